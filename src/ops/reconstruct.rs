//! Gold-standard reconstruction of a particle set: two half maps, the full map, their FSC.

use rayon::prelude::*;

use crate::array::Volume;
use crate::error::{Error, Result};
use crate::fft::Complex32;
use crate::geometry::{Mat3, euler_to_matrix};
use crate::imaging::{Ctf, ImageRenderer};
use crate::io::images::ParticleImages;
use crate::particles::ParticleTable;
use crate::reconstruction::{
    FourierAccumulator, FscKind, MaskedFsc, fsc, insertion_order, masked_fsc, resolution_at, ssnr_from_fsc,
};
use crate::rng::Rng;

/// What to reconstruct and how.
#[derive(Clone, Debug)]
pub struct ReconstructOptions {
    /// Multiply by the CTF and weight by CTF² (RELION's `--ctf`).
    pub ctf: bool,
    /// Padding factor of the Fourier grid (RELION's `--pad`, default 2).
    pub padding: usize,
    /// Seed for the half-set split of particles without rlnRandomSubset.
    pub seed: u64,
    /// Regularise with the SSNR from the half-map FSC (RELION's MAP estimate); off gives
    /// relion_reconstruct's plain maps.
    pub wiener: bool,
    /// A mask for the masked, phase-randomisation-corrected FSC.
    pub mask: Option<Volume>,
}

impl Default for ReconstructOptions {
    fn default() -> Self {
        ReconstructOptions { ctf: true, padding: 2, seed: 0, wiener: true, mask: None }
    }
}

/// The maps and their FSC.
pub struct Reconstruction {
    /// Half maps from particles of half set 1 and 2.
    pub half_maps: [Volume; 2],
    /// The map from all particles.
    pub full_map: Volume,
    /// FSC per shell between the half maps.
    pub fsc: Vec<f64>,
    /// With a mask: the masked FSC corrected by phase randomisation (the resolution comes from it).
    pub masked: Option<MaskedFsc>,
    /// Resolution in Å where the (corrected, with a mask) FSC falls below 0.143.
    pub resolution: f64,
    /// Pixel size in Å.
    pub pixel_size: f64,
    /// Half set of every particle (1 or 2), as used.
    pub subsets: Vec<u8>,
    /// Whether any subset was assigned here (the table had none).
    pub assigned_subsets: bool,
}

/// Memory the accumulators need, in bytes, for `threads` workers.
pub fn accumulator_bytes(box_size: usize, padding: usize, threads: usize) -> u64 {
    let big = (box_size * padding) as u64;
    // data (8 bytes) + weight (4 bytes) per half-grid point, two half sets per worker
    (big / 2 + 1) * big * big * 12 * 2 * threads as u64
}

/// Half set of each particle: rlnRandomSubset where present, otherwise a seeded random split.
pub fn half_sets(table: &ParticleTable, seed: u64) -> (Vec<u8>, bool) {
    let mut rng = Rng::new(seed);
    let mut assigned = false;
    let subsets = table
        .particles
        .iter()
        .map(|p| {
            p.random_subset.unwrap_or_else(|| {
                assigned = true;
                1 + (rng.next_u64() & 1) as u8
            })
        })
        .collect();
    (subsets, assigned)
}

/// Reconstructs the particles of `table` whose images `images` holds, calling `progress` with
/// the number of particles done since its last call (from any thread).
///
/// # Errors
/// `--ctf` without defocus columns, particles with NaN pixels, or an empty half set.
pub fn reconstruct(
    table: &ParticleTable,
    images: &ParticleImages,
    options: &ReconstructOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Reconstruction> {
    if table.is_empty() {
        return Err(Error::invalid("no particles to reconstruct").with_path(&table.path));
    }
    check_ctf(table, options)?;
    let n = images.shape()[0];
    if images.shape() != [n, n] {
        return Err(Error::unsupported(format!("images must be square, found {}×{}", n, images.shape()[1])));
    }
    let (subsets, assigned) = half_sets(table, options.seed);
    for half in [1u8, 2] {
        if !subsets.contains(&half) {
            return Err(Error::invalid(format!("half set {half} is empty: a gold-standard FSC needs both"))
                .in_field("rlnRandomSubset")
                .with_path(&table.path));
        }
    }
    let pixel_size = table.optics_groups[table.particles[0].optics_group].pixel_size;
    let indices: Vec<usize> = (0..table.len()).collect();
    let halves = accumulate(table, images, &indices, &subsets, options, progress)?;

    let raw = [halves[0].reconstruct(None), halves[1].reconstruct(None)];
    let raw_fsc = fsc(&raw[0], &raw[1]);
    let mut all = halves[0].clone();
    all.add(&halves[1]);
    let (half_maps, full_map) = if options.wiener {
        let half_ssnr = ssnr_from_fsc(&raw_fsc, FscKind::HalfMaps);
        let half_maps = [halves[0].reconstruct(Some(&half_ssnr)), halves[1].reconstruct(Some(&half_ssnr))];
        (half_maps, all.reconstruct(Some(&ssnr_from_fsc(&raw_fsc, FscKind::WholeMap))))
    } else {
        (raw, all.reconstruct(None))
    };
    finish(half_maps, full_map, options, pixel_size, subsets, assigned)
}

/// The half-map FSC (masked and corrected with a mask), the resolution, and the result.
///
/// # Errors
/// A mask of another size than the maps.
pub fn finish(
    half_maps: [Volume; 2],
    full_map: Volume,
    options: &ReconstructOptions,
    pixel_size: f64,
    subsets: Vec<u8>,
    assigned_subsets: bool,
) -> Result<Reconstruction> {
    let n = full_map.shape[0];
    let curve = fsc(&half_maps[0], &half_maps[1]);
    let masked = match &options.mask {
        Some(mask) if mask.shape != half_maps[0].shape => {
            return Err(Error::mismatch(format!(
                "the mask is {:?} voxels, the maps {:?}",
                mask.shape, half_maps[0].shape
            ))
            .in_field("--mask"));
        }
        Some(mask) => Some(masked_fsc(&half_maps[0], &half_maps[1], mask, options.seed)),
        None => None,
    };
    let resolution = resolution_at(masked.as_ref().map_or(&curve, |m| &m.corrected), 0.143, n, pixel_size);
    Ok(Reconstruction {
        half_maps,
        full_map,
        fsc: curve,
        masked,
        resolution,
        pixel_size,
        subsets,
        assigned_subsets,
    })
}

/// `--ctf` needs defocus values.
fn check_ctf(table: &ParticleTable, options: &ReconstructOptions) -> Result<()> {
    if options.ctf && !table.has_ctf {
        return Err(Error::missing("CTF correction asked for, but the particles have no defocus values")
            .in_field("rlnDefocusU")
            .with_path(&table.path));
    }
    Ok(())
}

/// The map of one half set only (RELION's `--subset`), without FSC.
pub fn reconstruct_subset(
    table: &ParticleTable,
    images: &ParticleImages,
    subset: u8,
    options: &ReconstructOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Volume> {
    check_ctf(table, options)?;
    let (subsets, _) = half_sets(table, options.seed);
    let indices: Vec<usize> = (0..table.len()).filter(|&i| subsets[i] == subset).collect();
    if indices.is_empty() {
        return Err(Error::invalid(format!("half set {subset} is empty"))
            .in_field("rlnRandomSubset")
            .with_path(&table.path));
    }
    let halves = accumulate(table, images, &indices, &subsets, options, progress)?;
    Ok(halves[(subset - 1) as usize].reconstruct(None))
}

/// Inserts the particles `indices` into the accumulator of their half set (`subsets[i]`, 1 or
/// 2), in parallel (one pair per rayon job, summed at the end).
pub fn accumulate(
    table: &ParticleTable,
    images: &ParticleImages,
    indices: &[usize],
    subsets: &[u8],
    options: &ReconstructOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<[FourierAccumulator; 2]> {
    let pose = |i: usize| particle_pose(table, i);
    accumulate_posed(table, images, indices, subsets, options, &pose, progress)
}

/// A particle's projection matrix (RELION's A) and image origin in pixels.
pub fn particle_pose(table: &ParticleTable, i: usize) -> (Mat3, [f64; 2]) {
    let p = &table.particles[i];
    let pixel = table.optics_of(i).pixel_size;
    let [rot, tilt, psi] = p.euler_deg;
    (euler_to_matrix(rot, tilt, psi), [p.origin_angstrom[0] / pixel, p.origin_angstrom[1] / pixel])
}

/// [`accumulate`] with each particle inserted at the pose `pose(i)` (projection matrix and
/// origin in pixels) instead of its own: how a deformation that is rigid in a region is undone.
pub fn accumulate_posed(
    table: &ParticleTable,
    images: &ParticleImages,
    indices: &[usize],
    subsets: &[u8],
    options: &ReconstructOptions,
    pose: &(dyn Fn(usize) -> (Mat3, [f64; 2]) + Sync),
    progress: &(dyn Fn(usize) + Sync),
) -> Result<[FourierAccumulator; 2]> {
    let n = images.shape()[0];
    let chunk = (indices.len() / (rayon::current_num_threads() * 4)).clamp(16, 4096);
    // particles of nearby views one after another: each insertion finds the last in the cache
    let matrices: Vec<Mat3> = indices.iter().map(|&i| pose(i).0).collect();
    let ordered: Vec<usize> = insertion_order(&matrices).into_iter().map(|k| indices[k]).collect();
    ordered
        .par_chunks(chunk)
        .try_fold(
            || Worker::new(n, options.padding),
            |mut worker, chunk| {
                for &i in chunk {
                    worker.insert(table, images, i, subsets[i], options.ctf, pose(i))?;
                }
                progress(chunk.len());
                Ok::<_, Error>(worker)
            },
        )
        .map(|worker| worker.map(|w| w.halves))
        .try_reduce_with(|mut a, b| {
            a[0].add(&b[0]);
            a[1].add(&b[1]);
            Ok(a)
        })
        .expect("at least one particle")
}

/// One thread's accumulators and buffers.
struct Worker {
    halves: [FourierAccumulator; 2],
    preparer: ParticlePreparer,
    particle: PreparedParticle,
}

impl Worker {
    fn new(n: usize, padding: usize) -> Self {
        Worker {
            halves: [FourierAccumulator::new(n, padding), FourierAccumulator::new(n, padding)],
            preparer: ParticlePreparer::new(n),
            particle: PreparedParticle::new(n),
        }
    }

    fn insert(
        &mut self,
        table: &ParticleTable,
        images: &ParticleImages,
        i: usize,
        half: u8,
        ctf: bool,
        (a, origin): (Mat3, [f64; 2]),
    ) -> Result<()> {
        self.preparer.prepare(table, images, i, ctf, origin, &mut self.particle)?;
        self.particle.insert_into(&mut self.halves[(half - 1) as usize], &a);
        Ok(())
    }
}

/// A particle ready for Fourier insertion: its centred spectrum with the translation undone,
/// multiplied by the CTF (unless the data are CTF-premultiplied), and the CTF².
pub struct PreparedParticle {
    /// Half-plane spectrum.
    pub spectrum: Vec<Complex32>,
    /// CTF² per half-plane frequency (unused without CTF).
    pub ctf2: Vec<f32>,
    /// Whether the CTF was applied (and `ctf2` holds it).
    pub with_ctf: bool,
}

impl PreparedParticle {
    /// Buffers for n-pixel images.
    pub fn new(n: usize) -> Self {
        let len = (n / 2 + 1) * n;
        PreparedParticle { spectrum: vec![Complex32::default(); len], ctf2: vec![0.0; len], with_ctf: false }
    }

    /// Inserts the particle into `accumulator` at projection matrix `a`.
    pub fn insert_into(&self, accumulator: &mut FourierAccumulator, a: &Mat3) {
        accumulator.insert(a, &self.spectrum, self.with_ctf.then_some(&self.ctf2[..]));
    }
}

/// Reads, checks and transforms particle images into [`PreparedParticle`]s; owns its FFT plan.
pub struct ParticlePreparer {
    n: usize,
    renderer: ImageRenderer,
    image: Vec<f32>,
    bytes: Vec<u8>,
}

impl ParticlePreparer {
    /// Buffers for n-pixel images.
    pub fn new(n: usize) -> Self {
        ParticlePreparer { n, renderer: ImageRenderer::new(n), image: vec![0.0; n * n], bytes: Vec::new() }
    }

    /// Prepares particle `i` with its translation `origin` (pixels) undone.
    ///
    /// # Errors
    /// An unreadable image, or one with NaN or infinite pixels (named by row and stack).
    pub fn prepare(
        &mut self,
        table: &ParticleTable,
        images: &ParticleImages,
        i: usize,
        ctf: bool,
        origin: [f64; 2],
        out: &mut PreparedParticle,
    ) -> Result<()> {
        let p = &table.particles[i];
        let optics = table.optics_of(i);
        images.read(i, &mut self.image, &mut self.bytes).map_err(|e| e.at_row(i + 1))?;
        if self.image.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "image {} of {} has NaN or infinite pixels",
                p.image.index + 1,
                p.image.path
            ))
            .at_row(i + 1)
            .with_path(&table.path));
        }
        self.renderer.spectrum(&self.image, origin, &mut out.spectrum);
        out.with_ctf = ctf;
        if ctf {
            Ctf::new(optics, &p.ctf).fill_half_plane(self.n, optics.pixel_size, false, &mut out.ctf2);
            if !optics.ctf_premultiplied {
                out.spectrum.iter_mut().zip(&out.ctf2).for_each(|(v, c)| *v *= *c);
            }
            out.ctf2.iter_mut().for_each(|c| *c *= *c);
        }
        Ok(())
    }
}

/// The FSC as a RELION postprocess-style STAR file: `data_general` with rlnFinalResolution and
/// `data_fsc` with one row per shell; with a mask, RELION's masked, unmasked, phase-randomised
/// and corrected columns.
pub fn fsc_star(
    curve: &[f64],
    masked: Option<&MaskedFsc>,
    n: usize,
    pixel_size: f64,
    resolution: f64,
) -> Result<crate::io::star::StarFile> {
    use crate::io::star::{DataBlock, Item, StarFile, Table};
    let mut general = DataBlock::new("general");
    general.items.push(Item::Pair { tag: "rlnFinalResolution".into(), value: format!("{resolution:.6}") });
    let mut columns =
        vec!["rlnSpectralIndex", "rlnResolution", "rlnAngstromResolution", "rlnFourierShellCorrelation"];
    if masked.is_some() {
        columns.extend([
            "rlnFourierShellCorrelationCorrected",
            "rlnFourierShellCorrelationUnmaskedMaps",
            "rlnFourierShellCorrelationMaskedMaps",
            "rlnCorrectedFourierShellCorrelationPhaseRandomizedMaskedMaps",
        ]);
    }
    let mut table = Table::new(&columns)?;
    for (s, f) in curve.iter().enumerate() {
        let inv = s as f64 / (n as f64 * pixel_size);
        let angstrom = if s == 0 { 999.0 } else { 1.0 / inv };
        let mut row = vec![s.to_string(), format!("{inv:.6}"), format!("{angstrom:.6}")];
        match masked {
            Some(m) => row.extend(
                [m.corrected[s], m.corrected[s], m.unmasked[s], m.masked[s], m.randomised[s]]
                    .map(|v| format!("{v:.6}")),
            ),
            None => row.push(format!("{f:.6}")),
        }
        table.push_row(&row)?;
    }
    Ok(StarFile { blocks: vec![general, DataBlock::with_table("fsc", table)] })
}

/// Writes half maps, the full map and the FSC table under `dir` (maps get the pixel size in
/// their header); with subsets assigned here, the particles with rlnRandomSubset too.
/// Returns the paths written.
pub fn write_outputs(
    result: &Reconstruction,
    table: &ParticleTable,
    dir: &std::path::Path,
) -> Result<Vec<std::path::PathBuf>> {
    use crate::io::mrc::{Mode, write_volume};
    std::fs::create_dir_all(dir).map_err(|e| Error::io(e, dir))?;
    let mut written = Vec::new();
    let ps = result.pixel_size as f32;
    for (name, map) in [
        ("half1.mrc", &result.half_maps[0]),
        ("half2.mrc", &result.half_maps[1]),
        ("map.mrc", &result.full_map),
    ] {
        let path = dir.join(name);
        write_volume(&path, map, ps, [0.0; 3], Mode::Float32)?;
        written.push(path);
    }
    let n = result.full_map.shape[0];
    let path = dir.join("fsc.star");
    fsc_star(&result.fsc, result.masked.as_ref(), n, result.pixel_size, result.resolution)?.write(&path)?;
    written.push(path);
    let path = dir.join("fsc.png");
    let title = format!("Half-map FSC: {:.2} Å at 0.143", result.resolution);
    let curves: Vec<(&str, &[f64])> = match &result.masked {
        Some(m) => vec![
            ("corrected", &m.corrected),
            ("unmasked", &m.unmasked),
            ("masked", &m.masked),
            ("phase-randomised", &m.randomised),
        ],
        None => vec![("half maps", &result.fsc)],
    };
    crate::plot::fsc_chart(&title, &curves, n, result.pixel_size).write_png(&path)?;
    written.push(path);
    if result.assigned_subsets {
        let mut with_subsets = table.clone();
        for (p, s) in with_subsets.particles.iter_mut().zip(&result.subsets) {
            p.random_subset = Some(*s);
        }
        let path = dir.join("particles.star");
        crate::io::relion::write_particles_star(&path, &with_subsets, None)?;
        written.push(path);
    }
    Ok(written)
}
