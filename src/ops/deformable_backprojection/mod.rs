//! Deformable backprojection: half maps in the consensus frame with each particle's learnt
//! motion undone, by two routes that keep the CTF² weights consistent with the data:
//! - [`tiles`]: soft tiles of near-rigid motion, each particle Fourier-inserted once per tile
//!   at its tile's rigid transform (the default);
//! - [`groups`]: particles grouped by latent, each group reconstructed as it is and its map
//!   pulled back to the consensus frame, the groups averaged with spectral weights.

use rayon::prelude::*;

use crate::Result;
use crate::fft::Complex32;
use crate::geometry::Mat3;
use crate::imaging::shift_half_plane;
use crate::io::images::ParticleImages;
use crate::ops::reconstruct::{
    ParticlePreparer, PreparedParticle, ReconstructOptions, accumulator_bytes, particle_pose,
};
use crate::particles::ParticleTable;
use crate::reconstruction::FourierAccumulator;

pub mod groups;
pub mod tiles;

pub use groups::{LatentGroups, group_reconstruct, latent_groups};
pub use tiles::{TileMotions, Tiling, deformable_reconstruct, tile_motions, tiling};

/// Particles prepared (read, Fourier-transformed, CTF applied) together, then inserted into
/// every accumulator that takes them: the per-particle work is done once per pass.
const PARTICLES_PER_CHUNK: usize = 256;

/// How particle `i` goes into accumulator `target`: the projection matrix and a further image
/// shift (pixels, added to the particle's origin), or `None` when it does not.
pub type Placement<'a> = dyn Fn(usize, usize) -> Option<(Mat3, [f64; 2])> + Sync + 'a;

/// Passes over the particles needed to fill `count` accumulators within `max_memory` bytes.
pub fn passes(count: usize, box_size: usize, options: &ReconstructOptions, max_memory: u64) -> usize {
    count.div_ceil(per_pass(count, box_size, options, max_memory))
}

fn per_pass(count: usize, box_size: usize, options: &ReconstructOptions, max_memory: u64) -> usize {
    // accumulator_bytes counts the two half sets
    let one = accumulator_bytes(box_size, options.padding, 1) / 2;
    ((max_memory / one.max(1)) as usize).clamp(1, count.max(1))
}

/// Fills `count` Fourier accumulators, each particle inserted wherever `place` puts it, in
/// passes of as many accumulators as fit in `max_memory` bytes; accumulators are filled in
/// parallel, each from the particles in table order (the result does not depend on threads).
/// `progress` counts particles, once per pass.
///
/// # Errors
/// An unreadable image, or one with NaN or infinite pixels.
pub fn accumulate_placed(
    table: &ParticleTable,
    images: &ParticleImages,
    count: usize,
    options: &ReconstructOptions,
    max_memory: u64,
    place: &Placement,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<FourierAccumulator>> {
    let n = images.shape()[0];
    let all: Vec<usize> = (0..count).collect();
    let mut accumulators = Vec::with_capacity(count);
    let mut prepared: Vec<PreparedParticle> =
        (0..PARTICLES_PER_CHUNK).map(|_| PreparedParticle::new(n)).collect();
    let indices: Vec<usize> = (0..table.len()).collect();
    for targets in all.chunks(per_pass(count, n, options, max_memory)) {
        let mut pass: Vec<(FourierAccumulator, Vec<Complex32>)> = targets
            .iter()
            .map(|_| {
                (FourierAccumulator::new(n, options.padding), vec![Complex32::default(); (n / 2 + 1) * n])
            })
            .collect();
        for chunk in indices.chunks(PARTICLES_PER_CHUNK) {
            prepared[..chunk.len()].par_iter_mut().zip(chunk).try_for_each_init(
                || ParticlePreparer::new(n),
                |preparer, (slot, &i)| {
                    let (_, origin) = particle_pose(table, i);
                    preparer.prepare(table, images, i, options.ctf, origin, slot)
                },
            )?;
            pass.par_iter_mut().zip(targets).for_each(|((accumulator, shifted), &target)| {
                for (particle, &i) in prepared.iter().zip(chunk) {
                    let Some((a, shift)) = place(i, target) else { continue };
                    shifted.copy_from_slice(&particle.spectrum);
                    shift_half_plane(shifted, n, shift);
                    accumulator.insert(&a, shifted, particle.with_ctf.then_some(&particle.ctf2[..]));
                }
            });
            progress(chunk.len());
        }
        accumulators.extend(pass.into_iter().map(|(accumulator, _)| accumulator));
    }
    Ok(accumulators)
}
