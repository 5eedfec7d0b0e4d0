//! Single-threaded f32 GEMM throughput of matrixmultiply, gemm and faer on cryomotion's shapes
//! (each network GEMM runs on one core; rayon spreads particles over cores).

use std::time::Instant;

/// C (m×n) = A (m×k) · B (k×n), row-major.
type Kernel = fn(usize, usize, usize, &[f32], &[f32], &mut [f32]);

fn with_matrixmultiply(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    unsafe {
        matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), n as isize, 1, 0.0, c.as_mut_ptr(), n as isize, 1);
    }
}

fn with_gemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

fn with_faer(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    let a = faer::MatRef::from_row_major_slice(a, m, k);
    let b = faer::MatRef::from_row_major_slice(b, k, n);
    let c = faer::MatMut::from_row_major_slice_mut(c, m, n);
    faer::linalg::matmul::matmul(c, faer::Accum::Replace, a, b, 1.0f32, faer::Par::Seq);
}

fn main() {
    // (label, m, k, n): decoder tile forward (256 Gaussians × 32 → 32), weight gradient
    // (32 × 256 → 32), first layer (Ng × 60 → 32), encoder (128 images × 1024/4096 → 256)
    let shapes = [
        ("decoder layer, tile 256", 256, 32, 32),
        ("decoder dW, tile 256", 32, 256, 32),
        ("decoder head 32→3", 256, 32, 3),
        ("position encoding 60→32", 2000, 60, 32),
        ("encoder box 64", 128, 1024, 256),
        ("encoder box 128", 128, 4096, 256),
    ];
    let kernels: [(&str, Kernel); 3] = [("matrixmultiply", with_matrixmultiply), ("gemm", with_gemm), ("faer", with_faer)];
    println!("{:28} {:>16} {:>10} {:>10}", "shape (m×k×n), GFLOP/s", kernels[0].0, kernels[1].0, kernels[2].0);
    for (label, m, k, n) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.1).collect();
        let mut reference = vec![0.0f32; m * n];
        with_matrixmultiply(m, k, n, &a, &b, &mut reference);
        let mut line = format!("{label:28}");
        for (name, kernel) in kernels {
            let mut c = vec![0.0f32; m * n];
            kernel(m, k, n, &a, &b, &mut c);
            let err = c.iter().zip(&reference).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(err < 1e-2 * (k as f32), "{name} disagrees on {label}: {err}");
            let flops = 2.0 * (m * k * n) as f64;
            let reps = ((2e9 / flops) as usize).clamp(3, 200_000);
            let t = Instant::now();
            for _ in 0..reps {
                kernel(m, k, n, &a, &b, &mut c);
            }
            let gflops = flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9;
            line += &format!(" {gflops:>w$.1}", w = if name == "matrixmultiply" { 16 } else { 10 });
        }
        println!("{line}");
    }
}
