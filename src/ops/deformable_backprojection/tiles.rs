//! Route a, tiles of near-rigid motion: the consensus is split into soft
//! tiles (k-means of the Gaussians); for each particle and tile, the rigid transform that best
//! takes the tile's consensus Gaussians onto their deformed positions is composed with the
//! particle's pose, and the particle is Fourier-inserted into that tile's accumulator (CTF²
//! with it, so the weights follow the motion). Each tile is reconstructed and the tiles are
//! blended with their soft masks. O(N²) per particle and tile, not O(N³).
//!
//! Geometry: a tile deformed by x ↦ R·x + t and projected with RELION's matrix A is the
//! consensus projected with A·R and shifted in the image by (A·t)ₓᵧ; the particle's origin
//! (RELION: the image is the projection shifted by −origin) becomes origin − (A·t)ₓᵧ.

use rayon::prelude::*;

use super::accumulate_placed;
use crate::analysis::kmeans;
use crate::array::Volume;
use crate::geometry::{Mat3, Rigid, ScatteredField, fit_rigid, mat_mul, trilinear};
use crate::io::images::ParticleImages;
use crate::io::npy::{NpyArray, write_npy};
use crate::ops::reconstruct::{ReconstructOptions, Reconstruction, finish, particle_pose};
use crate::particles::ParticleTable;
use crate::reconstruction::{FourierAccumulator, FscKind, fsc, ssnr_from_fsc};
use crate::training::TrainedModel;
use crate::{Error, Result};

/// Soft tiles of the consensus.
#[derive(Clone, Debug)]
pub struct Tiling {
    /// Tile of each Gaussian.
    pub labels: Vec<usize>,
    /// Number of tiles.
    pub count: usize,
    /// Tile weights per voxel, summing to one everywhere.
    pub masks: Vec<Volume>,
}

impl Tiling {
    /// Each tile's weight at `at` (Å, box-centred; trilinear between voxels of `pixel_size` Å).
    pub fn weights_at(&self, at: [f64; 3], pixel_size: f64) -> Vec<f32> {
        let n = self.masks.first().map_or(1, |m| m.shape[0]);
        let voxel = at.map(|a| (a / pixel_size + (n / 2) as f64).clamp(0.0, (n - 1) as f64) as f32);
        self.masks.iter().map(|m| trilinear(m, voxel)).collect()
    }
}

/// `count` tiles from k-means of the Gaussian `positions` (Å, box-centred), with masks on an
/// n³ grid of `pixel_size` Å that blend over about two Gaussian spacings.
pub fn tiling(positions: &[f32], count: usize, n: usize, pixel_size: f64, seed: u64) -> Tiling {
    let clusters = kmeans(positions, 3, count.max(1), seed);
    let count = clusters.sizes.len();
    let points: Vec<[f32; 3]> = positions.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    let spacing = ScatteredField::new(&points, 10.0).mean_spacing();
    let field = ScatteredField::new(&points, (2.0 * spacing).max(pixel_size as f32));
    let mut masks = vec![Volume::zeros([n; 3]); count];
    let c = (n / 2) as f32;
    let values: Vec<Vec<f32>> = (0..n * n * n)
        .into_par_iter()
        .map(|v| {
            let (x, y, z) = (v % n, (v / n) % n, v / (n * n));
            let at = [x as f32 - c, y as f32 - c, z as f32 - c].map(|u| u * pixel_size as f32);
            let mut w = vec![0.0f32; count];
            field.weights(at, |g, weight| w[clusters.labels[g]] += weight);
            let total: f32 = w.iter().sum();
            // far from every Gaussian (solvent), all tiles share the voxel equally
            let floor = 1e-6;
            w.iter().map(|&wk| (wk + floor / count as f32) / (total + floor)).collect()
        })
        .collect();
    for (v, w) in values.iter().enumerate() {
        for (k, &wk) in w.iter().enumerate() {
            masks[k].data[v] = wk;
        }
    }
    Tiling { labels: clusters.labels, count, masks }
}

/// Each particle's rigid transform per tile (consensus → its conformation) and the RMS
/// residual of that fit (Å): how far the learnt motion is from rigid there.
#[derive(Clone, Debug)]
pub struct TileMotions {
    /// `transforms[particle][tile]`.
    pub transforms: Vec<Vec<Rigid>>,
    /// `residuals[particle][tile]`, Å RMS over the tile's Gaussians, weighted by amplitude.
    pub residuals: Vec<Vec<f32>>,
}

/// Numbers per particle and tile in a stored [`TileMotions`]: rotation (9, row-major),
/// translation (3, Å), residual (Å).
const STORED: usize = 13;

impl TileMotions {
    /// Writes the motions as a float64 `.npy` of shape (particles, tiles, 13): read back, they
    /// are the same numbers, so a cached backprojection equals a fresh one bit for bit.
    ///
    /// # Errors
    /// Write failures.
    pub fn write(&self, path: &std::path::Path) -> Result<()> {
        let tiles = self.transforms.first().map_or(0, Vec::len);
        let mut bytes = Vec::with_capacity(self.transforms.len() * tiles * STORED * 8);
        for (transforms, residuals) in self.transforms.iter().zip(&self.residuals) {
            for (t, &r) in transforms.iter().zip(residuals) {
                let numbers = t.rotation.iter().flatten().chain(&t.translation).copied();
                for v in numbers.chain([f64::from(r)]) {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        let array = NpyArray::plain("<f8", vec![self.transforms.len(), tiles, STORED], bytes)?;
        write_npy(path, &array)
    }

    /// Reads motions written by [`TileMotions::write`], checking that they are of `particles`
    /// particles and `tiles` tiles.
    ///
    /// # Errors
    /// An unreadable file or another shape.
    pub fn read(path: &std::path::Path, particles: usize, tiles: usize) -> Result<Self> {
        let array = NpyArray::read(path)?;
        if array.shape != [particles, tiles, STORED] {
            return Err(Error::mismatch(format!(
                "tile motions of shape {:?}, expected [{particles}, {tiles}, {STORED}]",
                array.shape
            ))
            .with_path(path));
        }
        let values = array.values()?;
        let mut motions = TileMotions { transforms: Vec::with_capacity(particles), residuals: Vec::new() };
        for per_particle in values.chunks_exact(tiles * STORED) {
            let (mut transforms, mut residuals) = (Vec::with_capacity(tiles), Vec::with_capacity(tiles));
            for v in per_particle.chunks_exact(STORED) {
                let rotation = [[v[0], v[1], v[2]], [v[3], v[4], v[5]], [v[6], v[7], v[8]]];
                transforms.push(Rigid { rotation, translation: [v[9], v[10], v[11]] });
                residuals.push(v[12] as f32);
            }
            motions.transforms.push(transforms);
            motions.residuals.push(residuals);
        }
        Ok(motions)
    }

    /// Sets to the identity the transforms of every tile whose motion, RMS over its Gaussians
    /// (`positions`, Å) and over the particles, is below `limit` Å: motion too small to
    /// resolve (on rigid data the model learns a few tenths of an Å of it), which would only
    /// blur. Returns the tiles frozen.
    pub fn freeze_below(&mut self, tiling: &Tiling, positions: &[f32], limit: f64) -> Vec<usize> {
        let mut sum = vec![0.0f64; tiling.count];
        let mut count = vec![0usize; tiling.count];
        for transforms in &self.transforms {
            for (g, x) in positions.chunks_exact(3).enumerate() {
                let k = tiling.labels[g];
                let x = [x[0] as f64, x[1] as f64, x[2] as f64];
                let moved = transforms[k].apply(x);
                sum[k] += (0..3).map(|i| (moved[i] - x[i]).powi(2)).sum::<f64>();
                count[k] += 1;
            }
        }
        let frozen: Vec<usize> = (0..tiling.count)
            .filter(|&k| count[k] > 0 && (sum[k] / count[k] as f64).sqrt() < limit)
            .collect();
        for transforms in &mut self.transforms {
            for &k in &frozen {
                transforms[k] = Rigid { rotation: IDENTITY, translation: [0.0; 3] };
            }
        }
        frozen
    }
}

/// Fits the tile transforms of every particle from its half model's deformation at its latent,
/// each Gaussian weighted by its amplitude: one that carries no density is not seen by the
/// data, so where the decoder puts it says nothing about the motion.
pub fn tile_motions(model: &TrainedModel, tiling: &Tiling, progress: &(dyn Fn(usize) + Sync)) -> TileMotions {
    let members: Vec<Vec<usize>> = (0..tiling.count)
        .map(|k| (0..tiling.labels.len()).filter(|&g| tiling.labels[g] == k).collect())
        .collect();
    let gather = |flat: &[f32], ids: &[usize]| -> Vec<f32> {
        ids.iter().flat_map(|&g| flat[3 * g..3 * g + 3].iter().copied()).collect()
    };
    let consensus: Vec<Vec<Vec<f32>>> = (0..2)
        .map(|h| members.iter().map(|ids| gather(&model.halves[h].consensus.positions, ids)).collect())
        .collect();
    let weights: Vec<Vec<Vec<f32>>> = (0..2)
        .map(|h| {
            let a = &model.halves[h].consensus.amplitudes;
            let floor = 1e-3 * a.iter().sum::<f32>() / a.len().max(1) as f32;
            members.iter().map(|ids| ids.iter().map(|&g| a[g] + floor).collect()).collect()
        })
        .collect();
    let per: Vec<(Vec<Rigid>, Vec<f32>)> = (0..model.len())
        .into_par_iter()
        .map(|p| {
            let h = model.half_index(p);
            let deformed = model.deformed(h, model.latent_of(p));
            let fits = members
                .iter()
                .enumerate()
                .map(|(k, ids)| fit_tile(&consensus[h][k], &gather(&deformed, ids), &weights[h][k]))
                .unzip();
            progress(1);
            fits
        })
        .collect();
    let (transforms, residuals) = per.into_iter().unzip();
    TileMotions { transforms, residuals }
}

/// The weighted least-squares rigid transform taking a tile's consensus points `from` to their
/// deformed positions `to`, and its weighted RMS residual (Å); the identity below 3 points.
fn fit_tile(from: &[f32], to: &[f32], weights: &[f32]) -> (Rigid, f32) {
    if from.len() < 9 {
        return (Rigid { rotation: IDENTITY, translation: [0.0; 3] }, 0.0);
    }
    let rigid = fit_rigid(from, to, Some(weights));
    let (mut sq, mut total) = (0.0f64, 0.0f64);
    for ((a, b), &w) in from.chunks_exact(3).zip(to.chunks_exact(3)).zip(weights) {
        let moved = rigid.apply([a[0] as f64, a[1] as f64, a[2] as f64]);
        sq += w as f64 * (0..3).map(|i| (moved[i] - b[i] as f64).powi(2)).sum::<f64>();
        total += w as f64;
    }
    (rigid, (sq / total.max(f64::MIN_POSITIVE)).sqrt() as f32)
}

const IDENTITY: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// Half maps, full map and FSC of the particles (half set of each in `subsets`: the half model
/// that deformed it), each tile's accumulators fed with the particles posed by that tile's
/// transform, the tiles blended by their masks. The accumulators of moving tiles have padding
/// `moving_padding`; still tiles share one of `options.padding` (see [`accumulator_paddings`]).
/// They are filled in passes of as many as fit in `max_memory` bytes.
///
/// # Errors
/// As [`crate::ops::reconstruct::reconstruct`].
#[allow(clippy::too_many_arguments)]
pub fn deformable_reconstruct(
    table: &ParticleTable,
    images: &ParticleImages,
    subsets: Vec<u8>,
    tiling: &Tiling,
    motions: &TileMotions,
    moving_padding: usize,
    options: &ReconstructOptions,
    max_memory: u64,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Reconstruction> {
    let n = images.shape()[0];
    if tiling.masks.first().is_some_and(|m| m.shape != [n; 3]) {
        return Err(Error::mismatch("the tiles' grid differs from the particle box"));
    }
    let pixel_size = table.optics_groups[table.particles[0].optics_group].pixel_size;
    // tiles that never move (e.g. frozen ones) would all receive the same insertions: they
    // share one accumulator, blended with the sum of their masks
    let (representatives, masks) = accumulator_tiles(tiling, motions);
    // accumulator 2s + h: the tiles of slot s, half set h + 1
    let place = |i: usize, target: usize| {
        if usize::from(subsets[i] - 1) != target % 2 {
            return None;
        }
        let (a, _) = particle_pose(table, i);
        let rigid = &motions.transforms[i][representatives[target / 2]];
        // the tile's translation moves the image by (A·t)ₓᵧ: undo it as well
        let t = rigid.translation;
        let pixel = table.optics_of(i).pixel_size;
        let shift = [0, 1].map(|r| -(0..3).map(|c| a[r][c] * t[c]).sum::<f64>() / pixel);
        Some((mat_mul(&a, &rigid.rotation), shift))
    };
    let slots = representatives.len();
    let paddings = accumulator_paddings(tiling, motions, options, moving_padding);
    let mut flat =
        accumulate_placed(table, images, &paddings, options, max_memory, &place, progress)?.into_iter();
    let accumulators: Vec<[FourierAccumulator; 2]> =
        (0..slots).map(|_| [0, 1].map(|_| flat.next().expect("two accumulators per slot"))).collect();
    let blend = |maps: Vec<Volume>| -> Volume {
        let mut out = Volume::zeros([n; 3]);
        for (map, mask) in maps.iter().zip(&masks) {
            out.data.iter_mut().zip(&map.data).zip(&mask.data).for_each(|((o, &v), &m)| *o += v * m);
        }
        out
    };
    let raw: Vec<Volume> =
        (0..2).map(|h| blend(accumulators.iter().map(|a| a[h].reconstruct(None)).collect())).collect();
    let raw_fsc = fsc(&raw[0], &raw[1]);
    let (half_ssnr, whole_ssnr) = if options.wiener {
        (Some(ssnr_from_fsc(&raw_fsc, FscKind::HalfMaps)), Some(ssnr_from_fsc(&raw_fsc, FscKind::WholeMap)))
    } else {
        (None, None)
    };
    let full_map = blend(
        accumulators
            .iter()
            .map(|a| {
                let mut all = a[0].clone();
                all.add(&a[1]);
                all.reconstruct(whole_ssnr.as_deref())
            })
            .collect(),
    );
    let half_maps = match &half_ssnr {
        Some(ssnr) => {
            [0, 1].map(|h| blend(accumulators.iter().map(|a| a[h].reconstruct(Some(ssnr))).collect()))
        }
        None => {
            let mut raw = raw;
            let second = raw.pop().expect("two halves");
            [raw.pop().expect("two halves"), second]
        }
    };
    finish(half_maps, full_map, options, pixel_size, subsets, false)
}

/// Padding of each accumulator of [`deformable_reconstruct`] (two per tile slot: the half
/// sets): `moving_padding` for moving tiles, `options.padding` for the still tiles' shared one.
///
/// Unpadded grids (`moving_padding` 1) are 8 times smaller, so insertion stays in the cache and
/// the maps cost an eighth as much. Trilinear insertion without padding aliases the box's edges,
/// not its centre, and each tile's map is used only inside its mask, over the molecule: on the
/// benchmark's flexible data the moving domains' FSC against the truth is the same (see README).
pub fn accumulator_paddings(
    tiling: &Tiling,
    motions: &TileMotions,
    options: &ReconstructOptions,
    moving_padding: usize,
) -> Vec<usize> {
    let padding = |still: bool| if still { options.padding } else { moving_padding };
    slots(tiling, motions).iter().flat_map(|&(_, still)| [padding(still); 2]).collect()
}

/// The accumulators' slots: one per moving tile, and one shared by all tiles whose every
/// transform is the identity (where the first of them is): the tiles of each slot, and whether
/// they are still.
fn slots(tiling: &Tiling, motions: &TileMotions) -> Vec<(Vec<usize>, bool)> {
    let identity = Rigid { rotation: IDENTITY, translation: [0.0; 3] };
    let mut slots: Vec<(Vec<usize>, bool)> = Vec::new();
    let mut shared: Option<usize> = None;
    for k in 0..tiling.masks.len().max(tiling.count) {
        let still = motions.transforms.iter().all(|t| t[k] == identity);
        match shared {
            Some(s) if still => slots[s].0.push(k),
            _ => {
                if still {
                    shared = Some(slots.len());
                }
                slots.push((vec![k], still));
            }
        }
    }
    slots
}

/// The tile inserted for each accumulator slot, and the slot's blending mask (the sum of its
/// tiles' masks).
fn accumulator_tiles(tiling: &Tiling, motions: &TileMotions) -> (Vec<usize>, Vec<Volume>) {
    slots(tiling, motions)
        .into_iter()
        .map(|(tiles, _)| {
            let mut mask = tiling.masks[tiles[0]].clone();
            for &k in &tiles[1..] {
                mask.data.iter_mut().zip(&tiling.masks[k].data).for_each(|(a, b)| *a += b);
            }
            (tiles[0], mask)
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_motions_read_back_as_written() {
        let (c, s) = (0.6f64, 0.8f64);
        let turn =
            Rigid { rotation: [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], translation: [1.5, -2.0, 0.25] };
        let still = Rigid { rotation: IDENTITY, translation: [0.0; 3] };
        let motions = TileMotions {
            transforms: vec![vec![turn, still], vec![still, turn]],
            residuals: vec![vec![0.5, 0.0], vec![0.0, 1.25]],
        };
        let dir = std::env::temp_dir().join(format!("cryomotion-tiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("motions.npy");
        motions.write(&path).unwrap();
        let back = TileMotions::read(&path, 2, 2).unwrap();
        assert_eq!(back.transforms, motions.transforms);
        assert_eq!(back.residuals, motions.residuals);
        assert!(TileMotions::read(&path, 3, 2).unwrap_err().to_string().contains("expected [3, 2, 13]"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A Gaussian without amplitude, wherever the decoder put it, leaves the tile's fit alone.
    #[test]
    fn a_tile_fit_ignores_gaussians_without_density() {
        let from: Vec<f32> =
            (0..6).flat_map(|i| [(i % 3) as f32 * 4.0, (i / 3) as f32 * 5.0, (i % 2) as f32 * 3.0]).collect();
        let (c, s) = (0.3f64.cos(), 0.3f64.sin());
        let truth =
            Rigid { rotation: [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], translation: [1.0, -2.0, 0.5] };
        let mut to: Vec<f32> = from
            .chunks_exact(3)
            .flat_map(|p| truth.apply([p[0] as f64, p[1] as f64, p[2] as f64]).map(|v| v as f32))
            .collect();
        to[15..18].copy_from_slice(&[40.0, 40.0, 40.0]);
        let (rigid, residual) = fit_tile(&from, &to, &[1.0, 2.0, 1.0, 1.5, 1.0, 0.0]);
        assert!(residual < 1e-3, "weighted residual {residual}");
        for (row, expected) in rigid.rotation.iter().zip(&truth.rotation) {
            row.iter().zip(expected).for_each(|(a, b)| assert!((a - b).abs() < 1e-4, "{a} vs {b}"));
        }
        rigid.translation.iter().zip(&truth.translation).for_each(|(a, b)| assert!((a - b).abs() < 1e-3));
        let (_, unweighted) = fit_tile(&from, &to, &[1.0; 6]);
        assert!(unweighted > 5.0, "the stray Gaussian weighs on an unweighted fit: {unweighted}");
    }

    #[test]
    fn only_tiles_that_barely_move_are_frozen() {
        // two tiles of two Gaussians 10 Å apart; tile 0 moves 0.1 Å, tile 1 turns 5° about z
        let positions = [0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 20.0, 0.0, 10.0, 20.0, 0.0];
        let tiling = Tiling { labels: vec![0, 0, 1, 1], count: 2, masks: Vec::new() };
        let (c, s) = (5f64.to_radians().cos(), 5f64.to_radians().sin());
        let shift = Rigid { rotation: IDENTITY, translation: [0.1, 0.0, 0.0] };
        let turn = Rigid { rotation: [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], translation: [0.0; 3] };
        let mut motions =
            TileMotions { transforms: vec![vec![shift, turn]; 3], residuals: vec![vec![0.0; 2]; 3] };
        assert_eq!(motions.freeze_below(&tiling, &positions, 0.25), vec![0]);
        assert!(motions.transforms.iter().all(|t| t[0].translation == [0.0; 3] && t[1] == turn));
        // the still tile's shared accumulator keeps the options' padding, the moving one its own
        let options = ReconstructOptions::default();
        assert_eq!(accumulator_paddings(&tiling, &motions, &options, 1), vec![2, 2, 1, 1]);
        // the 5° turn moves those Gaussians by 2 × |x| × sin(2.5°) = 1.74 and 1.95 Å: kept at
        // 1.5 Å (tile 0, now still, is frozen again), frozen at 2 Å
        assert_eq!(motions.freeze_below(&tiling, &positions, 1.5), vec![0]);
        assert_eq!(motions.freeze_below(&tiling, &positions, 2.0), vec![0, 1]);
        assert_eq!(accumulator_paddings(&tiling, &motions, &options, 1), vec![2, 2]);
    }
}
