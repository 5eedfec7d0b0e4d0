//! 2D and 3D real FFT plans with their scratch buffers.

use std::sync::Arc;

use rayon::prelude::*;
use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

/// Forward and inverse real FFTs of (nx, ny) images; owns its scratch (one per thread).
pub struct Fft2 {
    nx: usize,
    ny: usize,
    r2c: Arc<dyn RealToComplex<f32>>,
    c2r: Arc<dyn ComplexToReal<f32>>,
    col_forward: Arc<dyn Fft<f32>>,
    col_inverse: Arc<dyn Fft<f32>>,
    row_scratch: Vec<Complex32>,
    column: Vec<Complex32>,
    col_scratch: Vec<Complex32>,
}

impl Fft2 {
    /// Plans transforms of (nx, ny) images.
    pub fn new(nx: usize, ny: usize) -> Self {
        let mut real = RealFftPlanner::<f32>::new();
        let mut complex = FftPlanner::<f32>::new();
        let r2c = real.plan_fft_forward(nx);
        let c2r = real.plan_fft_inverse(nx);
        let col_forward = complex.plan_fft_forward(ny);
        let col_inverse = complex.plan_fft_inverse(ny);
        let row_scratch = vec![Complex32::default(); r2c.get_scratch_len().max(c2r.get_scratch_len())];
        let col_scratch =
            vec![
                Complex32::default();
                col_forward.get_inplace_scratch_len().max(col_inverse.get_inplace_scratch_len())
            ];
        Fft2 {
            nx,
            ny,
            r2c,
            c2r,
            col_forward,
            col_inverse,
            row_scratch,
            column: vec![Complex32::default(); ny],
            col_scratch,
        }
    }

    /// Length of the half-plane spectrum: (nx/2 + 1)·ny.
    pub fn spectrum_len(&self) -> usize {
        (self.nx / 2 + 1) * self.ny
    }

    /// Forward transform; `input` (nx·ny) is used as scratch and left undefined.
    ///
    /// # Panics
    /// If the buffers have the wrong lengths.
    pub fn forward(&mut self, input: &mut [f32], output: &mut [Complex32]) {
        let (nx, ny, hx) = (self.nx, self.ny, self.nx / 2 + 1);
        assert_eq!(input.len(), nx * ny, "Fft2 input length");
        assert_eq!(output.len(), hx * ny, "Fft2 output length");
        for (row_in, row_out) in input.chunks_exact_mut(nx).zip(output.chunks_exact_mut(hx)) {
            self.r2c
                .process_with_scratch(row_in, row_out, &mut self.row_scratch)
                .expect("row lengths match the plan");
        }
        columns(output, hx, &*self.col_forward, &mut self.column, &mut self.col_scratch);
    }

    /// Inverse transform, divided by nx·ny; `input` is used as scratch and left undefined.
    ///
    /// # Panics
    /// If the buffers have the wrong lengths.
    pub fn inverse(&mut self, input: &mut [Complex32], output: &mut [f32]) {
        let (nx, ny, hx) = (self.nx, self.ny, self.nx / 2 + 1);
        assert_eq!(input.len(), hx * ny, "Fft2 input length");
        assert_eq!(output.len(), nx * ny, "Fft2 output length");
        columns(input, hx, &*self.col_inverse, &mut self.column, &mut self.col_scratch);
        let scale = 1.0 / (nx * ny) as f32;
        for (row_in, row_out) in input.chunks_exact_mut(hx).zip(output.chunks_exact_mut(nx)) {
            // the DC (and, for even nx, Nyquist) terms of a real signal are real
            row_in[0].im = 0.0;
            if nx % 2 == 0 {
                row_in[hx - 1].im = 0.0;
            }
            self.c2r
                .process_with_scratch(row_in, row_out, &mut self.row_scratch)
                .expect("row lengths match the plan");
            row_out.iter_mut().for_each(|v| *v *= scale);
        }
    }
}

/// Transforms every column (stride `hx`, length `column.len()`) of `data` in place.
fn columns(
    data: &mut [Complex32],
    hx: usize,
    fft: &dyn Fft<f32>,
    column: &mut [Complex32],
    scratch: &mut [Complex32],
) {
    for x in 0..hx {
        for (y, c) in column.iter_mut().enumerate() {
            *c = data[y * hx + x];
        }
        fft.process_with_scratch(column, scratch);
        for (y, c) in column.iter().enumerate() {
            data[y * hx + x] = *c;
        }
    }
}

/// Forward and inverse real FFTs of (nx, ny, nz) volumes.
pub struct Fft3 {
    shape: [usize; 3],
    planes: Fft2,
    z_forward: Arc<dyn Fft<f32>>,
    z_inverse: Arc<dyn Fft<f32>>,
    column: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

impl Fft3 {
    /// Plans transforms of (nx, ny, nz) volumes.
    pub fn new(shape: [usize; 3]) -> Self {
        let mut complex = FftPlanner::<f32>::new();
        let z_forward = complex.plan_fft_forward(shape[2]);
        let z_inverse = complex.plan_fft_inverse(shape[2]);
        let scratch = vec![
            Complex32::default();
            z_forward.get_inplace_scratch_len().max(z_inverse.get_inplace_scratch_len())
        ];
        Fft3 {
            shape,
            planes: Fft2::new(shape[0], shape[1]),
            z_forward,
            z_inverse,
            column: vec![Complex32::default(); shape[2]],
            scratch,
        }
    }

    /// Length of the half spectrum: (nx/2 + 1)·ny·nz.
    pub fn spectrum_len(&self) -> usize {
        (self.shape[0] / 2 + 1) * self.shape[1] * self.shape[2]
    }

    /// Forward transform; `input` is used as scratch and left undefined.
    pub fn forward(&mut self, input: &mut [f32], output: &mut [Complex32]) {
        let [nx, ny, nz] = self.shape;
        let plane = (nx / 2 + 1) * ny;
        assert_eq!(input.len(), nx * ny * nz, "Fft3 input length");
        assert_eq!(output.len(), plane * nz, "Fft3 output length");
        for (vin, vout) in input.chunks_exact_mut(nx * ny).zip(output.chunks_exact_mut(plane)) {
            self.planes.forward(vin, vout);
        }
        columns(output, plane, &*self.z_forward, &mut self.column, &mut self.scratch);
    }

    /// Inverse transform, divided by nx·ny·nz; `input` is used as scratch and left undefined.
    pub fn inverse(&mut self, input: &mut [Complex32], output: &mut [f32]) {
        let [nx, ny, nz] = self.shape;
        let plane = (nx / 2 + 1) * ny;
        assert_eq!(input.len(), plane * nz, "Fft3 input length");
        assert_eq!(output.len(), nx * ny * nz, "Fft3 output length");
        columns(input, plane, &*self.z_inverse, &mut self.column, &mut self.scratch);
        for (vin, vout) in input.chunks_exact_mut(plane).zip(output.chunks_exact_mut(nx * ny)) {
            self.planes.inverse(vin, vout);
            vout.iter_mut().for_each(|v| *v *= 1.0 / nz as f32);
        }
    }
}

impl Fft3 {
    /// [`Fft3::inverse`] on every thread of the current rayon pool.
    pub fn inverse_parallel(&self, input: &mut [Complex32], output: &mut [f32]) {
        let [nx, ny, nz] = self.shape;
        let plane = (nx / 2 + 1) * ny;
        assert_eq!(input.len(), plane * nz, "Fft3 input length");
        assert_eq!(output.len(), nx * ny * nz, "Fft3 output length");
        columns_parallel(input, plane, &*self.z_inverse);
        input.par_chunks_exact_mut(plane).zip(output.par_chunks_exact_mut(nx * ny)).for_each_init(
            || Fft2::new(nx, ny),
            |planes, (vin, vout)| {
                planes.inverse(vin, vout);
                vout.iter_mut().for_each(|v| *v *= 1.0 / nz as f32);
            },
        );
    }
}

/// Transforms the z columns of `data` (planes of `plane` values, one per z) in place, blocks of
/// neighbouring columns in parallel: each block gathers its columns, transforms them together
/// and scatters them back.
fn columns_parallel(data: &mut [Complex32], plane: usize, fft: &dyn Fft<f32>) {
    const WIDTH: usize = 64;
    let nz = data.len() / plane;
    let mut blocks: Vec<Vec<&mut [Complex32]>> =
        (0..plane.div_ceil(WIDTH)).map(|_| Vec::with_capacity(nz)).collect();
    for slab in data.chunks_exact_mut(plane) {
        for (block, piece) in blocks.iter_mut().zip(slab.chunks_mut(WIDTH)) {
            block.push(piece);
        }
    }
    blocks.into_par_iter().for_each_init(
        || {
            (
                vec![Complex32::default(); WIDTH * nz],
                vec![Complex32::default(); fft.get_inplace_scratch_len()],
            )
        },
        |(columns, scratch), mut pieces| {
            let width = pieces[0].len();
            let columns = &mut columns[..width * nz];
            for (z, piece) in pieces.iter().enumerate() {
                for (c, v) in piece.iter().enumerate() {
                    columns[c * nz + z] = *v;
                }
            }
            fft.process_with_scratch(columns, scratch);
            for (z, piece) in pieces.iter_mut().enumerate() {
                for (c, v) in piece.iter_mut().enumerate() {
                    *v = columns[c * nz + z];
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct DFT of a real 3D array at frequency (kx, ky, kz): the oracle.
    fn dft(v: &[f32], [nx, ny, nz]: [usize; 3], k: [i64; 3]) -> (f64, f64) {
        let (mut re, mut im) = (0.0, 0.0);
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let phase = -2.0
                        * std::f64::consts::PI
                        * (k[0] as f64 * x as f64 / nx as f64
                            + k[1] as f64 * y as f64 / ny as f64
                            + k[2] as f64 * z as f64 / nz as f64);
                    let a = v[(z * ny + y) * nx + x] as f64;
                    re += a * phase.cos();
                    im += a * phase.sin();
                }
            }
        }
        (re, im)
    }

    fn signal(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919) % 113) as f32 / 113.0 - 0.5).collect()
    }

    #[test]
    fn forward_matches_direct_dft_and_inverse_restores() {
        for shape in [[6, 4, 5], [5, 7, 2], [8, 8, 8]] {
            let [nx, ny, nz] = shape;
            let v = signal(nx * ny * nz);
            let mut fft = Fft3::new(shape);
            let mut spectrum = vec![Complex32::default(); fft.spectrum_len()];
            let mut input = v.clone();
            fft.forward(&mut input, &mut spectrum);
            let hx = nx / 2 + 1;
            for (i, s) in spectrum.iter().enumerate().step_by(3) {
                let kx = (i % hx) as i64;
                let ky = super::super::signed_frequency((i / hx) % ny, ny);
                let kz = super::super::signed_frequency(i / (hx * ny), nz);
                let (re, im) = dft(&v, shape, [kx, ky, kz]);
                assert!((s.re as f64 - re).abs() < 1e-4 && (s.im as f64 - im).abs() < 1e-4, "{shape:?} {i}");
            }
            let mut back = vec![0.0; v.len()];
            fft.inverse(&mut spectrum, &mut back);
            for (a, b) in back.iter().zip(&v) {
                assert!((a - b).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn parallel_inverse_equals_the_serial_one() {
        for shape in [[8, 6, 70], [7, 5, 3]] {
            let [nx, ny, nz] = shape;
            let mut fft = Fft3::new(shape);
            let mut spectrum = vec![Complex32::default(); fft.spectrum_len()];
            fft.forward(&mut signal(nx * ny * nz), &mut spectrum);
            let (mut serial, mut parallel) = (vec![0.0; nx * ny * nz], vec![f32::NAN; nx * ny * nz]);
            fft.inverse(&mut spectrum.clone(), &mut serial);
            fft.inverse_parallel(&mut spectrum, &mut parallel);
            assert_eq!(serial, parallel, "{shape:?}");
        }
    }

    #[test]
    fn two_dimensional_round_trip_with_dirty_buffers() {
        let (nx, ny) = (9, 6);
        let v = signal(nx * ny);
        let mut fft = Fft2::new(nx, ny);
        for _ in 0..2 {
            let mut input = v.clone();
            let mut spectrum = vec![Complex32::new(7.0, -3.0); fft.spectrum_len()];
            fft.forward(&mut input, &mut spectrum);
            let mut back = vec![f32::NAN; nx * ny];
            fft.inverse(&mut spectrum, &mut back);
            for (a, b) in back.iter().zip(&v) {
                assert!((a - b).abs() < 1e-5);
            }
        }
    }
}
