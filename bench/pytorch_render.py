"""DynaMight's image formation re-implemented in PyTorch as ../shared/design/dynamight-reference.md
§7–§8 specifies it, timed like benches/render.rs: rotate the (B, Ng, 3) deformed positions, bilinear
scatter_add splat into (B, N, N), fftshift + full complex FFT (ortho), Gaussian kernel in Fourier
space (transfer function of exp(−R²/B²) with R on linspace(−N, N, N), rounded), phase ramp for the
shift, CTF, mean squared error against the data spectrum; then backward to positions and kernel.
"""
import resource
import sys
import time

import torch

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(1)
B = 128


def rotations(b):
    q = torch.randn(b, 4)
    q = q / q.norm(dim=1, keepdim=True)
    w, x, y, z = q.unbind(1)
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], 1),
        torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], 1),
    ], 1)  # rows 0–1: (b, 2, 3)


def render_loss(pos, R, shift, kernel_width, scale, ctf, data, n):
    p2 = torch.einsum("bij,bgj->bgi", R, pos)  # (B, Ng, 2)
    u = (p2 + 0.5) * n
    u0 = torch.floor(u)
    f = u - u0
    u0 = u0.long()
    img = torch.zeros(B, n * n)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        ix, iy = u0[..., 0] + dx, u0[..., 1] + dy
        w = (f[..., 0] if dx else 1 - f[..., 0]) * (f[..., 1] if dy else 1 - f[..., 1])
        ok = (ix >= 0) & (ix < n) & (iy >= 0) & (iy < n)
        img = img.scatter_add(1, (iy.clamp(0, n - 1) * n + ix.clamp(0, n - 1)), w * ok)
    img = img.view(B, n, n)
    lin = torch.linspace(-n, n, n)
    r = torch.sqrt(lin[None, :] ** 2 + lin[:, None] ** 2).round()
    g = torch.exp(-(r ** 2) / kernel_width ** 2)
    k = torch.fft.fft2(torch.fft.fftshift(g), norm="ortho").real * (0.01 + scale ** 2) / kernel_width
    x = torch.fft.fft2(torch.fft.fftshift(img, dim=(-2, -1)), norm="ortho") * k
    freq = torch.fft.fftfreq(n)
    ramp = torch.exp(-2j * torch.pi * (freq[None, None, :] * shift[:, 0, None, None] + freq[None, :, None] * shift[:, 1, None, None]))
    x = x * ramp
    return ((ctf * x - data).abs() ** 2).mean()


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


print(f"threads: {torch.get_num_threads()}")
print(f"render + loss (DynaMight's image formation), forward + backward, batch {B}:")
print("  box  Gaussians   per batch   particles/s   peak RSS")
for n in [64, 128, 256]:
    R = rotations(B)
    shift = torch.randn(B, 2) * 3
    ctf = torch.sin(torch.arange(n * n).float().view(n, n) * 0.1)
    data = torch.randn(B, n, n, dtype=torch.complex64)
    kernel_width = torch.tensor(n / 40.0, requires_grad=True)
    scale = torch.tensor(0.1, requires_grad=True)
    for ng in [400, 2000, 10000, 30000]:
        pos = ((torch.rand(B, ng, 3) - 0.5) * 0.6).requires_grad_()
        render_loss(pos, R, shift, kernel_width, scale, ctf, data, n).backward()
        times = []
        for _ in range(5 if ng * n <= 2000 * 128 else 2):
            t = time.perf_counter()
            pos.grad = None
            render_loss(pos, R, shift, kernel_width, scale, ctf, data, n).backward()
            times.append(time.perf_counter() - t)
        s = min(times)
        print(f"  {n:3}  {ng:9}   {s:7.3f} s   {B / s:11.0f}   {peak_mb():6.0f} MB", flush=True)
