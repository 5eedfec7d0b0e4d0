//! The displacement decoder, as DynaMight defines it, fused per tile of Gaussians.
//!
//! For particle b and Gaussian i: h₀ = W₀·[PE(cᵢ), z_b] (no bias); then `depth` × (Linear + ELU)
//! of `width`; then Linear(width→3), ELU, Linear(3→3) (zero-initialised, so Δ ≡ 0 at the start).
//! W₀ splits into a position part, applied once per batch to all Gaussians, and a latent part,
//! applied once per particle: h₀ = P_i + Z_b. The rest runs per tile of Gaussians with the
//! tile's activations in a small buffer; the backward recomputes them, so memory holds only
//! Δ and dΔ for the whole batch, never B·Ng·width activations.

use rayon::prelude::*;

use super::{
    Linear, elu, elu_backward, encoding_frequencies, positional_encoding, positional_encoding_backward,
};

/// Sizes of a decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Latent dimension.
    pub latent: usize,
    /// Positional-encoding frequencies per axis (DynaMight: 10).
    pub frequencies: usize,
    /// Hidden width (DynaMight: 32).
    pub width: usize,
    /// Hidden Linear + ELU layers (DynaMight: 8).
    pub depth: usize,
    /// Box size the positions' encoding is scaled for.
    pub box_size: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig { latent: 6, frequencies: 10, width: 32, depth: 8, box_size: 64 }
    }
}

/// Gaussians per tile: a tile's activations (tile × width × depth floats) stay in cache.
const TILE: usize = 256;

/// Particles per backward work unit: fixed, so that sums are in the same order on any machine.
const PARTICLES_PER_BLOCK: usize = 4;

/// The decoder's weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoder {
    /// Sizes.
    pub config: DecoderConfig,
    /// Encoding frequencies.
    pub frequencies: Vec<f32>,
    /// First layer, split: position part (width × 6K) and latent part (width × latent).
    pub first_position: Linear,
    /// First layer, latent part.
    pub first_latent: Linear,
    /// Hidden layers, each followed by ELU.
    pub hidden: Vec<Linear>,
    /// width → 3, followed by ELU.
    pub head: Linear,
    /// 3 → 3, zero-initialised.
    pub last: Linear,
}

/// Gradients of every weight of a [`Decoder`], in the same layout.
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderGrads {
    /// d/d first_position.weight.
    pub first_position: Vec<f32>,
    /// d/d first_latent.weight.
    pub first_latent: Vec<f32>,
    /// d/d hidden[k].weight.
    pub hidden: Vec<Vec<f32>>,
    /// d/d head.weight.
    pub head: Vec<f32>,
    /// d/d last.weight.
    pub last: Vec<f32>,
}

impl DecoderGrads {
    fn zeros(d: &Decoder) -> Self {
        DecoderGrads {
            first_position: vec![0.0; d.first_position.weight.len()],
            first_latent: vec![0.0; d.first_latent.weight.len()],
            hidden: d.hidden.iter().map(|l| vec![0.0; l.weight.len()]).collect(),
            head: vec![0.0; d.head.weight.len()],
            last: vec![0.0; d.last.weight.len()],
        }
    }

    /// Adds another set of gradients.
    pub fn add(&mut self, o: &DecoderGrads) {
        let add = |a: &mut [f32], b: &[f32]| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        add(&mut self.first_position, &o.first_position);
        add(&mut self.first_latent, &o.first_latent);
        for (a, b) in self.hidden.iter_mut().zip(&o.hidden) {
            add(a, b);
        }
        add(&mut self.head, &o.head);
        add(&mut self.last, &o.last);
    }
}

/// Per-thread buffers for one tile.
struct TileBuffers {
    /// Layer inputs: [h₀, after hidden 1, …, after hidden depth] (tile × width each).
    acts: Vec<Vec<f32>>,
    /// After the head's ELU (tile × 3).
    head: Vec<f32>,
    grad: Vec<f32>,
    grad_next: Vec<f32>,
    grad_head: Vec<f32>,
}

impl TileBuffers {
    fn new(c: &DecoderConfig) -> Self {
        TileBuffers {
            acts: vec![vec![0.0; TILE * c.width]; c.depth + 1],
            head: vec![0.0; TILE * 3],
            grad: vec![0.0; TILE * c.width],
            grad_next: vec![0.0; TILE * c.width],
            grad_head: vec![0.0; TILE * 3],
        }
    }
}

impl Decoder {
    /// A decoder with weights drawn from `init` (scaled per layer by 1/√fan-in, like PyTorch's
    /// default range), the last layer zero.
    pub fn new(config: DecoderConfig, mut normal: impl FnMut() -> f32) -> Self {
        let pe = 6 * config.frequencies;
        let mut layer = |inputs: usize, outputs: usize, fan_in: usize| {
            let scale = 1.0 / (fan_in as f32).sqrt();
            Linear::new(inputs, outputs, false, || normal() * scale)
        };
        let fan0 = pe + config.latent;
        let first_position = layer(pe, config.width, fan0);
        let first_latent = layer(config.latent, config.width, fan0);
        let hidden = (0..config.depth).map(|_| layer(config.width, config.width, config.width)).collect();
        let head = layer(config.width, 3, config.width);
        Decoder {
            frequencies: encoding_frequencies(config.box_size, config.frequencies),
            config,
            first_position,
            first_latent,
            hidden,
            head,
            last: Linear::new(3, 3, false, || 0.0),
        }
    }

    /// Multiply–adds per Gaussian and particle in the forward pass (for FLOP counts).
    pub fn macs_per_gaussian(&self) -> usize {
        let w = self.config.width;
        // the position part is shared by all particles; per particle: hidden, head, last
        self.config.depth * w * w + 3 * w + 9
    }

    fn encode(&self, positions: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let n = positions.len() / 3;
        let pe_width = 6 * self.config.frequencies;
        let mut pe = vec![0.0; n * pe_width];
        positional_encoding(positions, &self.frequencies, &mut pe);
        let mut p = vec![0.0; n * self.config.width];
        self.first_position.forward(&pe, n, &mut p);
        (pe, p)
    }

    /// Runs one tile's forward from h₀ = P[tile] + Z_b, keeping activations in `buf`; writes
    /// the tile's displacements to `out` (rows × 3).
    fn tile_forward(
        &self,
        p_tile: &[f32],
        z_row: &[f32],
        rows: usize,
        buf: &mut TileBuffers,
        out: &mut [f32],
    ) {
        let w = self.config.width;
        {
            let h0 = &mut buf.acts[0][..rows * w];
            for (h, p) in h0.chunks_exact_mut(w).zip(p_tile.chunks_exact(w)) {
                h.iter_mut().zip(p.iter().zip(z_row)).for_each(|(h, (p, z))| *h = p + z);
            }
        }
        for (k, layer) in self.hidden.iter().enumerate() {
            let (before, after) = buf.acts.split_at_mut(k + 1);
            let (x, y) = (&before[k][..rows * w], &mut after[0][..rows * w]);
            layer.forward(x, rows, y);
            elu(y);
        }
        let head = &mut buf.head[..rows * 3];
        self.head.forward(&buf.acts[self.config.depth][..rows * w], rows, head);
        elu(head);
        self.last.forward(head, rows, out);
    }

    /// Displacements Δ (B × Ng × 3, box units) of Gaussians at `positions` (Ng × 3, box units)
    /// for latents `z` (B × latent). Gaussians with `active[i] == false` stay where they are.
    ///
    /// # Panics
    /// If the buffers do not match.
    pub fn forward(&self, positions: &[f32], z: &[f32], active: Option<&[bool]>, out: &mut [f32]) {
        let (ng, d, w) = (positions.len() / 3, self.config.latent, self.config.width);
        let b = z.len() / d;
        assert_eq!(out.len(), b * ng * 3, "decoder output length");
        let (_, p) = self.encode(positions);
        let zw = self.latent_rows(z, b);
        out.par_chunks_mut(ng * 3).zip(zw.par_chunks(w)).for_each_init(
            || TileBuffers::new(&self.config),
            |buf, (out_b, z_row)| {
                for start in (0..ng).step_by(TILE) {
                    let rows = TILE.min(ng - start);
                    let tile_out = &mut out_b[start * 3..(start + rows) * 3];
                    self.tile_forward(&p[start * w..(start + rows) * w], z_row, rows, buf, tile_out);
                }
                if let Some(active) = active {
                    for (i, a) in active.iter().enumerate() {
                        if !a {
                            out_b[3 * i..3 * i + 3].fill(0.0);
                        }
                    }
                }
            },
        );
    }

    /// Backward from dL/dΔ (B × Ng × 3): returns the weight gradients, and adds dL/dz (B × latent)
    /// and, if given, dL/dpositions (Ng × 3). Activations are recomputed tile by tile.
    ///
    /// # Panics
    /// If the buffers do not match.
    pub fn backward(
        &self,
        positions: &[f32],
        z: &[f32],
        active: Option<&[bool]>,
        d_out: &[f32],
        d_z: &mut [f32],
        d_positions: Option<&mut [f32]>,
    ) -> DecoderGrads {
        let (ng, b, w) = self.check_backward(positions, z, d_out, d_z);
        let (pe, p) = self.encode(positions);
        let zw = self.latent_rows(z, b);
        // per block of particles: weight gradients, dL/dh₀ summed over Gaussians (→ z) and over
        // particles (→ positions); blocks have a fixed size and are summed in order, so results
        // are bit-identical for any thread count
        let blocks: Vec<(DecoderGrads, Vec<f32>, Vec<f32>)> = (0..b)
            .collect::<Vec<_>>()
            .par_chunks(PARTICLES_PER_BLOCK)
            .map(|block| {
                let (mut g, mut d_zw, mut d_p) =
                    (DecoderGrads::zeros(self), vec![0.0f32; b * w], vec![0.0f32; ng * w]);
                let mut buf = TileBuffers::new(&self.config);
                let mut tile_out = [0.0f32; TILE * 3];
                let mut d_tile = [0.0f32; TILE * 3];
                for &bi in block {
                    let z_row = &zw[bi * w..(bi + 1) * w];
                    for start in (0..ng).step_by(TILE) {
                        let rows = TILE.min(ng - start);
                        let p_tile = &p[start * w..(start + rows) * w];
                        self.tile_forward(p_tile, z_row, rows, &mut buf, &mut tile_out[..rows * 3]);
                        let dy = &mut d_tile[..rows * 3];
                        dy.copy_from_slice(&d_out[(bi * ng + start) * 3..(bi * ng + start + rows) * 3]);
                        zero_fixed(dy, active, start);
                        self.tile_backward(rows, &mut buf, dy, Some(&mut g));
                        // dL/dh₀ for the tile is in buf.grad
                        let dh0 = &buf.grad[..rows * w];
                        let dzw = &mut d_zw[bi * w..(bi + 1) * w];
                        for (row, dp) in
                            dh0.chunks_exact(w).zip(d_p[start * w..(start + rows) * w].chunks_exact_mut(w))
                        {
                            dzw.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                            dp.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                        }
                    }
                }
                (g, d_zw, d_p)
            })
            .collect();
        let mut blocks = blocks.into_iter();
        let (mut grads, mut d_zw, mut d_p) = blocks.next().expect("at least one particle");
        for (g, a, p) in blocks {
            grads.add(&g);
            d_zw.iter_mut().zip(&a).for_each(|(x, y)| *x += y);
            d_p.iter_mut().zip(&p).for_each(|(x, y)| *x += y);
        }
        // latent part of the first layer
        let mut dz_local = vec![0.0; z.len()];
        self.first_latent.backward(z, &d_zw, b, Some(&mut dz_local), &mut grads.first_latent, None);
        d_z.iter_mut().zip(&dz_local).for_each(|(a, b)| *a += b);
        // position part: through the encoding
        let pe_width = 6 * self.config.frequencies;
        let mut d_pe = vec![0.0; ng * pe_width];
        self.first_position.backward(&pe, &d_p, ng, Some(&mut d_pe), &mut grads.first_position, None);
        if let Some(dpos) = d_positions {
            positional_encoding_backward(positions, &self.frequencies, &d_pe, dpos);
        }
        grads
    }

    /// (Gaussians, particles, width) of a backward call, after checking its buffers.
    fn check_backward(
        &self,
        positions: &[f32],
        z: &[f32],
        d_out: &[f32],
        d_z: &[f32],
    ) -> (usize, usize, usize) {
        let (ng, b) = (positions.len() / 3, z.len() / self.config.latent);
        assert_eq!(d_out.len(), b * ng * 3, "output-gradient length");
        assert_eq!(d_z.len(), z.len(), "latent-gradient length");
        (ng, b, self.config.width)
    }

    /// The latent part of the first layer for each particle (B × width).
    fn latent_rows(&self, z: &[f32], b: usize) -> Vec<f32> {
        let mut zw = vec![0.0; b * self.config.width];
        self.first_latent.forward(z, b, &mut zw);
        zw
    }

    /// Backward through one tile from dΔ; leaves dL/dh₀ in `buf.grad`, and adds the weight
    /// gradients to `g` when given.
    fn tile_backward(
        &self,
        rows: usize,
        buf: &mut TileBuffers,
        dy: &[f32],
        mut g: Option<&mut DecoderGrads>,
    ) {
        let w = self.config.width;
        let step = |layer: &Linear, x: &[f32], dy: &[f32], dx: &mut [f32], dw: Option<&mut Vec<f32>>| match dw
        {
            Some(dw) => layer.backward(x, dy, rows, Some(dx), dw, None),
            None => layer.input_gradient(dy, rows, dx),
        };
        let head = &buf.head[..rows * 3];
        let dh = &mut buf.grad_head[..rows * 3];
        step(&self.last, head, dy, dh, g.as_deref_mut().map(|g| &mut g.last));
        elu_backward(head, dh);
        let grad = &mut buf.grad[..rows * w];
        step(
            &self.head,
            &buf.acts[self.config.depth][..rows * w],
            dh,
            grad,
            g.as_deref_mut().map(|g| &mut g.head),
        );
        for k in (0..self.config.depth).rev() {
            let y = &buf.acts[k + 1][..rows * w];
            elu_backward(y, &mut buf.grad[..rows * w]);
            let next = &mut buf.grad_next[..rows * w];
            let dw = g.as_deref_mut().map(|g| &mut g.hidden[k]);
            step(&self.hidden[k], &buf.acts[k][..rows * w], &buf.grad[..rows * w], next, dw);
            std::mem::swap(&mut buf.grad, &mut buf.grad_next);
        }
    }

    /// dL/dz (B × latent) from dL/dΔ (B × Ng × 3), without the weight gradients: the cheap
    /// backward of per-particle latent refinement. Writes `d_z`.
    ///
    /// # Panics
    /// If the buffers do not match.
    pub fn latent_gradient(
        &self,
        positions: &[f32],
        z: &[f32],
        active: Option<&[bool]>,
        d_out: &[f32],
        d_z: &mut [f32],
    ) {
        let (ng, b, w) = self.check_backward(positions, z, d_out, d_z);
        let (_, p) = self.encode(positions);
        let zw = self.latent_rows(z, b);
        let mut d_zw = vec![0.0f32; b * w];
        d_zw.par_chunks_mut(w).zip(zw.par_chunks(w)).enumerate().for_each_init(
            || (TileBuffers::new(&self.config), [0.0f32; TILE * 3], [0.0f32; TILE * 3]),
            |(buf, tile_out, d_tile), (bi, (dzw, z_row))| {
                for start in (0..ng).step_by(TILE) {
                    let rows = TILE.min(ng - start);
                    self.tile_forward(
                        &p[start * w..(start + rows) * w],
                        z_row,
                        rows,
                        buf,
                        &mut tile_out[..rows * 3],
                    );
                    let dy = &mut d_tile[..rows * 3];
                    dy.copy_from_slice(&d_out[(bi * ng + start) * 3..(bi * ng + start + rows) * 3]);
                    zero_fixed(dy, active, start);
                    self.tile_backward(rows, buf, dy, None);
                    for row in buf.grad[..rows * w].chunks_exact(w) {
                        dzw.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                    }
                }
            },
        );
        self.first_latent.input_gradient(&d_zw, b, d_z);
    }
}

/// Zeroes the output gradient of the tile's Gaussians (from `start`) that do not move.
fn zero_fixed(dy: &mut [f32], active: Option<&[bool]>, start: usize) {
    if let Some(active) = active {
        for (d, _) in dy.chunks_exact_mut(3).zip(&active[start..]).filter(|(_, a)| !**a) {
            d.fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck;
    use crate::rng::Rng;

    fn small() -> (Decoder, Vec<f32>, Vec<f32>, Vec<f32>) {
        let config = DecoderConfig { latent: 2, frequencies: 3, width: 6, depth: 2, box_size: 16 };
        let mut rng = Rng::new(5);
        let mut d = Decoder::new(config, || rng.normal() as f32);
        // a non-zero last layer, so that every gradient is exercised
        d.last.weight = (0..9).map(|_| rng.normal() as f32 * 0.5).collect();
        let (ng, b) = (TILE + 7, 3); // more than one tile
        let positions: Vec<f32> = (0..ng * 3).map(|_| rng.range(-0.4, 0.4) as f32).collect();
        let z: Vec<f32> = (0..b * 2).map(|_| rng.normal() as f32).collect();
        let r: Vec<f32> = (0..b * ng * 3).map(|_| rng.normal() as f32).collect();
        (d, positions, z, r)
    }

    /// An independent, unfused forward in f64: one MLP evaluation per (particle, Gaussian).
    fn reference(d: &Decoder, positions: &[f32], z: &[f32]) -> Vec<f64> {
        let c = d.config;
        let matvec = |l: &Linear, x: &[f64]| -> Vec<f64> {
            (0..l.outputs)
                .map(|o| (0..l.inputs).map(|i| l.weight[o * l.inputs + i] as f64 * x[i]).sum())
                .collect()
        };
        let elu =
            |v: Vec<f64>| v.into_iter().map(|x| if x > 0.0 { x } else { x.exp_m1() }).collect::<Vec<f64>>();
        let mut out = Vec::new();
        for zb in z.chunks(c.latent) {
            let zb: Vec<f64> = zb.iter().map(|&v| v as f64).collect();
            for p in positions.chunks(3) {
                let mut pe = Vec::new();
                for &x in p {
                    let f: Vec<f64> = d.frequencies.iter().map(|&f| f as f64 * x as f64).collect();
                    pe.extend(f.iter().map(|v| v.sin()));
                    pe.extend(f.iter().map(|v| v.cos()));
                }
                let mut h: Vec<f64> = matvec(&d.first_position, &pe)
                    .iter()
                    .zip(matvec(&d.first_latent, &zb))
                    .map(|(a, b)| a + b)
                    .collect();
                for l in &d.hidden {
                    h = elu(matvec(l, &h));
                }
                out.extend(matvec(&d.last, &elu(matvec(&d.head, &h))));
            }
        }
        out
    }

    fn loss(d: &Decoder, positions: &[f32], z: &[f32], r: &[f32], active: Option<&[bool]>) -> f64 {
        assert!(active.is_none());
        reference(d, positions, z).iter().zip(r).map(|(a, b)| a * *b as f64).sum()
    }

    #[test]
    fn fused_forward_equals_the_unfused_reference() {
        let (d, positions, z, _) = small();
        let mut out = vec![0.0; z.len() / 2 * positions.len()];
        d.forward(&positions, &z, None, &mut out);
        let expected = reference(&d, &positions, &z);
        for (a, b) in out.iter().zip(&expected) {
            assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn backward_matches_finite_differences_for_weights_latents_and_positions() {
        let (d, positions, z, r) = small();
        let mut dz = vec![0.0; z.len()];
        let mut dpos = vec![0.0; positions.len()];
        let g = d.backward(&positions, &z, None, &r, &mut dz, Some(&mut dpos));
        gradcheck(|z| loss(&d, &positions, z, &r, None), &z, &dz, 1e-3, 1e-3).unwrap();
        // positions enter through sin/cos of up to 8 rad per unit: a smaller step
        // a few Gaussians of each tile (the check costs two reference passes per coordinate)
        for range in [0..24, positions.len() - 24..positions.len()] {
            let with = |sub: &[f32]| {
                let mut p = positions.clone();
                p[range.clone()].copy_from_slice(sub);
                loss(&d, &p, &z, &r, None)
            };
            gradcheck(with, &positions[range.clone()], &dpos[range.clone()], 1e-4, 1e-3).unwrap();
        }
        let check = |name: &str,
                     get: &dyn Fn(&Decoder) -> Vec<f32>,
                     set: &dyn Fn(&mut Decoder, &[f32]),
                     grad: &[f32]| {
            let w0 = get(&d);
            gradcheck(
                |w| {
                    let mut e = d.clone();
                    set(&mut e, w);
                    loss(&e, &positions, &z, &r, None)
                },
                &w0,
                grad,
                1e-3,
                1e-3,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        };
        check("last", &|d| d.last.weight.clone(), &|d, w| d.last.weight = w.to_vec(), &g.last);
        check("head", &|d| d.head.weight.clone(), &|d, w| d.head.weight = w.to_vec(), &g.head);
        check(
            "hidden 0",
            &|d| d.hidden[0].weight.clone(),
            &|d, w| d.hidden[0].weight = w.to_vec(),
            &g.hidden[0],
        );
        check(
            "hidden 1",
            &|d| d.hidden[1].weight.clone(),
            &|d, w| d.hidden[1].weight = w.to_vec(),
            &g.hidden[1],
        );
        check(
            "latent",
            &|d| d.first_latent.weight.clone(),
            &|d, w| d.first_latent.weight = w.to_vec(),
            &g.first_latent,
        );
        check(
            "position",
            &|d| d.first_position.weight.clone(),
            &|d, w| d.first_position.weight = w.to_vec(),
            &g.first_position,
        );
    }

    #[test]
    fn gradients_are_bit_identical_across_runs_and_thread_counts() {
        let (d, positions, _, _) = small();
        // ten particles: three blocks, so that two threads really share the work
        let mut rng = Rng::new(77);
        let z: Vec<f32> = (0..10 * 2).map(|_| rng.normal() as f32).collect();
        let r: Vec<f32> = (0..10 * positions.len()).map(|_| rng.normal() as f32).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut dz = vec![0.0; z.len()];
                let g = d.backward(&positions, &z, None, &r, &mut dz, None);
                let mut bits: Vec<u32> =
                    g.hidden.iter().flatten().chain(&g.first_position).map(|v| v.to_bits()).collect();
                bits.extend(dz.iter().map(|v| v.to_bits()));
                bits
            })
        };
        let one = run(1);
        assert_eq!(one, run(1));
        assert_eq!(one, run(2));
    }

    #[test]
    fn starts_at_zero_and_masked_gaussians_never_move() {
        let config = DecoderConfig::default();
        let mut rng = Rng::new(1);
        let mut d = Decoder::new(config, || rng.normal() as f32);
        let positions: Vec<f32> = (0..30).map(|_| rng.range(-0.5, 0.5) as f32).collect();
        let z: Vec<f32> = (0..12).map(|_| rng.normal() as f32).collect();
        let mut out = vec![1.0; 2 * 10 * 3];
        d.forward(&positions, &z, None, &mut out);
        assert!(out.iter().all(|&v| v == 0.0), "the zero last layer gives Δ ≡ 0");
        d.last.weight = vec![0.3; 9];
        let active: Vec<bool> = (0..10).map(|i| i % 3 != 0).collect();
        d.forward(&positions, &z, Some(&active), &mut out);
        for b in 0..2 {
            for i in 0..10 {
                let moved = out[(b * 10 + i) * 3..(b * 10 + i + 1) * 3].iter().any(|&v| v != 0.0);
                assert_eq!(moved, active[i], "particle {b} Gaussian {i}");
            }
        }
        // and their gradient is zero: dL/dΔ of masked Gaussians does not reach the weights
        let r: Vec<f32> = (0..60).map(|k| if (k / 3) % 10 % 3 == 0 { 1.0 } else { 0.0 }).collect();
        let mut dz = vec![0.0; 12];
        let g = d.backward(&positions, &z, Some(&active), &r, &mut dz, None);
        assert!(g.last.iter().all(|&v| v == 0.0) && dz.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn latent_gradient_equals_the_full_backward() {
        let (d, positions, z, r) = small();
        let ng = positions.len() / 3;
        let active: Vec<bool> = (0..ng).map(|i| i % 4 != 1).collect();
        for mask in [None, Some(active.as_slice())] {
            let mut full = vec![0.0; z.len()];
            let _ = d.backward(&positions, &z, mask, &r, &mut full, None);
            let mut cheap = vec![f32::NAN; z.len()];
            d.latent_gradient(&positions, &z, mask, &r, &mut cheap);
            for (a, b) in full.iter().zip(&cheap) {
                assert!((a - b).abs() <= 1e-5 * a.abs().max(1e-3), "{a} vs {b}");
            }
        }
    }
}
