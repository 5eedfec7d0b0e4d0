//! Deformable backprojection: half maps in the consensus frame with each particle's learnt
//! motion undone, by two routes that keep the CTF² weights consistent with the data:
//! - [`tiles`]: soft tiles of near-rigid motion, each particle Fourier-inserted once per tile
//!   at its tile's rigid transform (the default);
//! - [`groups`]: particles grouped by latent, each group reconstructed as it is and its map
//!   pulled back to the consensus frame, the groups averaged with spectral weights.

use rayon::prelude::*;

use crate::Result;
use crate::geometry::Mat3;
use crate::io::images::ParticleImages;
use crate::ops::reconstruct::{
    ParticlePreparer, PreparedParticle, ReconstructOptions, accumulator_bytes, particle_pose,
};
use crate::particles::ParticleTable;
use crate::reconstruction::{FourierAccumulator, insertion_order};

pub mod groups;
pub mod tiles;

pub use groups::{LatentGroups, group_reconstruct, latent_groups};
pub use tiles::{TileMotions, Tiling, accumulator_paddings, deformable_reconstruct, tile_motions, tiling};

/// Particles prepared (read, Fourier-transformed, CTF applied) together, then inserted into
/// every accumulator that takes them: the per-particle work is done once per pass.
const PARTICLES_PER_CHUNK: usize = 1024;

/// How particle `i` goes into accumulator `target`: the projection matrix and a further image
/// shift (pixels, added to the particle's origin), or `None` when it does not.
pub type Placement<'a> = dyn Fn(usize, usize) -> Option<(Mat3, [f64; 2])> + Sync + 'a;

/// Passes over the particles needed to fill accumulators of these `paddings` within
/// `max_memory` bytes.
pub fn passes(paddings: &[usize], box_size: usize, max_memory: u64) -> usize {
    pass_ranges(paddings, box_size, max_memory).len()
}

/// Consecutive accumulators filled together: as many as fit in `max_memory` bytes, at least one.
fn pass_ranges(paddings: &[usize], box_size: usize, max_memory: u64) -> Vec<std::ops::Range<usize>> {
    // accumulator_bytes counts the two half sets
    let bytes = |padding: usize| accumulator_bytes(box_size, padding, 1) / 2;
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    let mut used = 0;
    for (k, &padding) in paddings.iter().enumerate() {
        match ranges.last_mut() {
            Some(range) if used + bytes(padding) <= max_memory => range.end = k + 1,
            _ => {
                ranges.push(k..k + 1);
                used = 0;
            }
        }
        used += bytes(padding);
    }
    ranges
}

/// Fills one Fourier accumulator per entry of `paddings` (its padding factor), each particle
/// inserted wherever `place` puts it, in passes of as many accumulators as fit in `max_memory`
/// bytes; accumulators are filled in parallel, each from the particles in one fixed order (the
/// result does not depend on threads).
/// `progress` counts particles, once per pass.
///
/// # Errors
/// An unreadable image, or one with NaN or infinite pixels.
pub fn accumulate_placed(
    table: &ParticleTable,
    images: &ParticleImages,
    paddings: &[usize],
    options: &ReconstructOptions,
    max_memory: u64,
    place: &Placement,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<FourierAccumulator>> {
    let n = images.shape()[0];
    let mut accumulators = Vec::with_capacity(paddings.len());
    let mut prepared: Vec<PreparedParticle> =
        (0..PARTICLES_PER_CHUNK).map(|_| PreparedParticle::new(n)).collect();
    // particles of nearby views one after another: each insertion finds the last in the cache
    let matrices: Vec<Mat3> = (0..table.len()).map(|i| particle_pose(table, i).0).collect();
    let indices = insertion_order(&matrices);
    for targets in pass_ranges(paddings, n, max_memory) {
        let mut pass: Vec<FourierAccumulator> =
            paddings[targets.clone()].iter().map(|&padding| FourierAccumulator::new(n, padding)).collect();
        for chunk in indices.chunks(PARTICLES_PER_CHUNK) {
            prepared[..chunk.len()].par_iter_mut().zip(chunk).try_for_each_init(
                || ParticlePreparer::new(n),
                |preparer, (slot, &i)| {
                    let (_, origin) = particle_pose(table, i);
                    preparer.prepare(table, images, i, options.ctf, origin, slot)
                },
            )?;
            pass.par_iter_mut().zip(targets.clone()).for_each(|(accumulator, target)| {
                for (particle, &i) in prepared.iter().zip(chunk) {
                    let Some((a, shift)) = place(i, target) else { continue };
                    let ctf2 = particle.with_ctf.then_some(&particle.ctf2[..]);
                    accumulator.insert_shifted(&a, &particle.spectrum, ctf2, shift);
                }
            });
            progress(chunk.len());
        }
        accumulators.extend(pass);
    }
    Ok(accumulators)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_hold_as_many_accumulators_as_fit() {
        // box 10: padded 20³ half grid of 11·20·20 points of 12 bytes; unpadded 6·10·10
        let (padded, unpadded) = (11 * 20 * 20 * 12, 6 * 10 * 10 * 12);
        assert_eq!(pass_ranges(&[2, 2, 2], 10, 2 * padded), vec![0..2, 2..3]);
        assert_eq!(pass_ranges(&[2, 2, 2], 10, 1), vec![0..1, 1..2, 2..3]);
        assert_eq!(pass_ranges(&[1, 1, 2, 1], 10, padded + unpadded), vec![0..2, 2..4]);
        assert_eq!(passes(&[1; 8], 10, 8 * unpadded), 1);
        assert!(pass_ranges(&[], 10, 1).is_empty());
    }
}
