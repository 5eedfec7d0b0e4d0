//! Route b, groups by latent: each half set's particles are grouped by k-means of their
//! latents (many small groups of nearly one conformation); each group is reconstructed as it
//! is, so its CTF² weights belong to its own data; its map is pulled back to the consensus
//! frame (sampled at the deformed position of every consensus voxel, the deformation being the
//! half model's at the group's mean latent); the pulled-back maps are averaged per resolution
//! shell with weights from each group's data per shell (its spectral SNR up to a common
//! factor), then FSC-weighted. O(N²) per particle (one insertion), O(N³) per group.

use rayon::prelude::*;

use super::accumulate_placed;
use crate::analysis::kmeans;
use crate::array::Volume;
use crate::fft::Complex32;
use crate::geometry::{ScatteredField, pull_back};
use crate::io::images::ParticleImages;
use crate::ops::reconstruct::{ReconstructOptions, Reconstruction, finish, particle_pose};
use crate::particles::ParticleTable;
use crate::reconstruction::{
    FscKind, fsc, shell_filter, shell_indices, ssnr_from_fsc, volume_from_spectrum, volume_spectrum,
};
use crate::training::TrainedModel;
use crate::{Error, Result};

/// SSNR assumed when reconstructing one group: a floor that keeps weakly sampled frequencies
/// from being amplified more than 100-fold (the shell weights downweight them afterwards).
const GROUP_SSNR: f64 = 100.0;

/// Particles grouped by latent, separately per half set.
#[derive(Clone, Debug)]
pub struct LatentGroups {
    /// Group of each particle.
    pub group_of: Vec<usize>,
    /// Half (0 or 1) of each group.
    pub half: Vec<usize>,
    /// Mean latent of each group.
    pub centres: Vec<Vec<f32>>,
    /// Particles per group.
    pub sizes: Vec<usize>,
}

impl LatentGroups {
    /// Number of groups.
    pub fn len(&self) -> usize {
        self.half.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.half.is_empty()
    }
}

/// Groups of about `per_group` particles of each half set, by k-means of their latents.
pub fn latent_groups(model: &TrainedModel, per_group: usize, seed: u64) -> LatentGroups {
    let mut groups = LatentGroups {
        group_of: vec![0; model.len()],
        half: Vec::new(),
        centres: Vec::new(),
        sizes: Vec::new(),
    };
    for h in 0..2 {
        let members: Vec<usize> = (0..model.len()).filter(|&p| model.half_index(p) == h).collect();
        if members.is_empty() {
            continue;
        }
        let points: Vec<f32> = members.iter().flat_map(|&p| model.latent_of(p).to_vec()).collect();
        let k = (members.len() / per_group.max(1)).max(1);
        let clusters = kmeans(&points, model.latent, k, seed);
        let first = groups.half.len();
        for (c, &size) in clusters.sizes.iter().enumerate() {
            groups.half.push(h);
            groups.sizes.push(size);
            groups.centres.push(clusters.centres[c * model.latent..(c + 1) * model.latent].to_vec());
        }
        for (&p, &label) in members.iter().zip(&clusters.labels) {
            groups.group_of[p] = first + label;
        }
    }
    groups
}

/// Half maps, full map and FSC with every group's map pulled back to the consensus frame
/// (route b; see the module). `downsample`: voxels between evaluations of the deformation
/// field. `subsets` must match the groups' halves (1 for half 0).
///
/// # Errors
/// As [`crate::ops::reconstruct::reconstruct`].
#[allow(clippy::too_many_arguments)]
pub fn group_reconstruct(
    table: &ParticleTable,
    images: &ParticleImages,
    model: &TrainedModel,
    groups: &LatentGroups,
    options: &ReconstructOptions,
    downsample: usize,
    max_memory: u64,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Reconstruction> {
    let n = images.shape()[0];
    if groups.group_of.len() != table.len() {
        return Err(Error::mismatch("the latent groups are of another particle set"));
    }
    let pixel_size = table.optics_groups[table.particles[0].optics_group].pixel_size;
    let place = |i: usize, g: usize| (groups.group_of[i] == g).then(|| (particle_pose(table, i).0, [0.0; 2]));
    let paddings = vec![options.padding; groups.len()];
    let accumulators = accumulate_placed(table, images, &paddings, options, max_memory, &place, progress)?;
    let fields: Vec<(ScatteredField, Vec<[f32; 3]>)> = (0..2)
        .map(|h| {
            let centres: Vec<[f32; 3]> =
                model.halves[h].consensus.positions.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
            let spacing = ScatteredField::new(&centres, 10.0).mean_spacing();
            (ScatteredField::new(&centres, 2.0 * spacing), centres)
        })
        .collect();
    let ssnr = vec![GROUP_SSNR; n / 2 + 1];
    let mut pulled: Vec<(usize, Vec<f64>, Vec<Complex32>)> = Vec::with_capacity(groups.len());
    for (g, accumulator) in accumulators.iter().enumerate() {
        let h = groups.half[g];
        let map = accumulator.reconstruct(Some(&ssnr));
        let displacements: Vec<[f32; 3]> =
            model.displacements(h, &groups.centres[g]).chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        let back = pull_back(&map, pixel_size, &fields[h].0, &displacements, downsample);
        pulled.push((h, accumulator.shell_weights(), volume_spectrum(&back)));
    }
    let combine = |halves: &[usize]| -> Volume {
        let members: Vec<&(usize, Vec<f64>, Vec<Complex32>)> =
            pulled.iter().filter(|(h, _, _)| halves.contains(h)).collect();
        weighted_average(n, &members.iter().map(|(_, w, s)| (&w[..], &s[..])).collect::<Vec<_>>())
    };
    let raw = [combine(&[0]), combine(&[1])];
    let raw_fsc = fsc(&raw[0], &raw[1]);
    let full = combine(&[0, 1]);
    let (half_maps, full_map) = if options.wiener {
        let half = ssnr_from_fsc(&raw_fsc, FscKind::HalfMaps);
        let whole = ssnr_from_fsc(&raw_fsc, FscKind::WholeMap);
        let [a, b] = raw;
        ([fsc_weighted(&a, &half), fsc_weighted(&b, &half)], fsc_weighted(&full, &whole))
    } else {
        (raw, full)
    };
    let subsets = (0..table.len()).map(|p| 1 + groups.half[groups.group_of[p]] as u8).collect();
    finish(half_maps, full_map, options, pixel_size, subsets, false)
}

/// Σ wₖ(s)·Fₖ / Σ wₖ(s) per shell s, back in real space.
fn weighted_average(n: usize, maps: &[(&[f64], &[Complex32])]) -> Volume {
    let shell = shell_indices(n);
    let mut total = vec![0.0f64; n / 2 + 1];
    for (w, _) in maps {
        total.iter_mut().zip(w.iter()).for_each(|(t, w)| *t += w);
    }
    let sum: Vec<Complex32> = (0..shell.len())
        .into_par_iter()
        .map(|i| {
            let s = (shell[i] as usize).min(n / 2);
            if total[s] <= 0.0 {
                return Complex32::default();
            }
            maps.iter().map(|(w, f)| f[i] * (w[s] / total[s]) as f32).sum()
        })
        .collect();
    volume_from_spectrum(sum, [n; 3])
}

/// The map multiplied per shell by SSNR/(1 + SSNR): the Wiener filter of a map whose noise
/// is known only per shell.
fn fsc_weighted(volume: &Volume, ssnr: &[f64]) -> Volume {
    shell_filter(volume, |s| {
        let r = ssnr.get(s).copied().unwrap_or(0.0);
        r / (1.0 + r)
    })
}
