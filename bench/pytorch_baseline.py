"""DynaMight's decoder MLP and encoder, re-implemented in PyTorch layer for layer as
../shared/design/dynamight-reference.md §5–§6 specifies them, timed like benches/networks.rs.

Decoder: [PE(c) (60), z (6)] materialised as (B, Ng, 66) → Linear(66→32) → 8 × [Linear(32→32), ELU]
→ Linear(32→3) → ELU → Linear(3→3), no biases. Encoder: AvgPool2d(2) → flatten → Linear(→256),
ReLU → Linear(256→128), tanh → two Linear(128→6) heads, with biases.
"""
import math
import resource
import sys
import time

import torch

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(1)
B, D, K = 128, 6, 10


def positional_encoding(c, n_box):
    f = torch.tensor([(n_box / 2) * (2 / n_box) ** (k / (K - 1)) for k in range(K)])
    x = c[..., None] * f  # (Ng, 3, K)
    return torch.cat([torch.sin(x), torch.cos(x)], dim=-1).reshape(c.shape[0], 6 * K)


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first = torch.nn.Linear(6 * K + D, 32, bias=False)
        self.hidden = torch.nn.ModuleList(torch.nn.Linear(32, 32, bias=False) for _ in range(8))
        self.head = torch.nn.Linear(32, 3, bias=False)
        self.last = torch.nn.Linear(3, 3, bias=False)

    def forward(self, c, z):
        pe = positional_encoding(c, 64)  # (Ng, 60)
        x = torch.cat([pe[None].expand(z.shape[0], -1, -1), z[:, None, :].expand(-1, c.shape[0], -1)], dim=-1)
        h = self.first(x)
        for layer in self.hidden:
            h = torch.nn.functional.elu(layer(h))
        return self.last(torch.nn.functional.elu(self.head(h)))


class Encoder(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.pool = torch.nn.AvgPool2d(2)
        self.l1 = torch.nn.Linear((n // 2) ** 2, 256)
        self.l2 = torch.nn.Linear(256, 128)
        self.mu = torch.nn.Linear(128, D)
        self.logvar = torch.nn.Linear(128, D)

    def forward(self, y):
        h = self.pool(y[:, None]).flatten(1)
        h = torch.tanh(self.l2(torch.relu(self.l1(h))))
        return self.mu(h), self.logvar(h)


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


decoder = Decoder()
print(f"threads: {torch.get_num_threads()}")
print("decoder, batch 128:")
print("  Gaussians   forward+backward   particles/s   peak RSS")
for ng in [400, 2000, 10000, 30000]:
    c = (torch.rand(ng, 3) - 0.5) * 0.8
    z = torch.randn(B, D)
    r = torch.randn(B, ng, 3)
    decoder.zero_grad()
    (decoder(c, z) * r).sum().backward()  # warm-up
    times = []  # best of several runs, as benches/networks.rs
    for _ in range(7 if ng <= 2000 else 3):
        t = time.perf_counter()
        decoder.zero_grad()
        (decoder(c, z) * r).sum().backward()
        times.append(time.perf_counter() - t)
    s = min(times)
    print(f"  {ng:9}   {s:14.3f} s   {B / s:11.0f}   {peak_mb():6.0f} MB", flush=True)
for n in [64, 128]:
    enc = Encoder(n)
    y = torch.randn(B, n, n)
    mu, lv = enc(y)
    (mu.sum() + lv.sum()).backward()
    times = []
    for _ in range(9):
        t = time.perf_counter()
        enc.zero_grad()
        mu, lv = enc(y)
        (mu.sum() + lv.sum()).backward()
        times.append(time.perf_counter() - t)
    s = min(times)
    print(f"encoder box {n}: forward+backward {s:.4f} s per batch of {B}, {B / s:.0f} particles/s")
