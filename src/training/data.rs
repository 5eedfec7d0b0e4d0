//! Particles on the training grid: poses as views, CTFs, half sets and validation subsets, and
//! batches of data spectra and encoder images, streamed from the stacks (or held in memory).

use rayon::prelude::*;

use crate::fft::{Complex32, Fft2, origin_to_image_centre};
use crate::geometry::euler_to_matrix;
use crate::imaging::splat::View;
use crate::imaging::{Ctf, GridScratch, TrainingGrid};
use crate::io::images::ParticleImages;
use crate::particles::ParticleTable;
use crate::rng::Rng;
use crate::{Error, Result};

/// What training needs of each particle, on the training grid.
pub struct ParticleSet {
    /// The training grid (box, per-group cropping and pixel size).
    pub grid: TrainingGrid,
    /// Pose and shift, in training pixels, as the input gives them.
    pub views: Vec<View>,
    /// Refined image shift of each particle, Å from its input origin (the refined origin is
    /// the input's minus it), applied to its view as batches are filled; empty: none.
    pub shifts: Vec<[f32; 2]>,
    /// CTF of each particle.
    pub ctfs: Vec<Ctf>,
    /// Optics group (index) of each particle.
    pub groups: Vec<usize>,
    /// Whether each optics group's images are CTF-premultiplied.
    pub premultiplied: Vec<bool>,
    /// Half set (1 or 2) of each particle.
    pub halves: Vec<u8>,
    /// Held out of training to estimate the noise spectrum of its half.
    pub validation: Vec<bool>,
}

impl ParticleSet {
    /// The particles of `table` (box `image_box` on disk) on a grid of `box_size` pixels, with
    /// half sets `halves` and a seeded validation subset of `validation_fraction` of each half
    /// (at least one particle, at most `validation_max`).
    ///
    /// # Errors
    /// A table without poses or CTF, or a half set too small to train.
    pub fn new(
        table: &ParticleTable,
        image_box: usize,
        box_size: usize,
        halves: Vec<u8>,
        validation_fraction: f64,
        validation_max: usize,
        seed: u64,
    ) -> Result<Self> {
        if !table.has_poses {
            return Err(Error::missing(
                "the particles have no poses (rlnAngleRot, rlnAngleTilt, rlnAnglePsi)",
            )
            .with_path(&table.path));
        }
        if !table.has_ctf {
            return Err(Error::missing("the particles have no CTF parameters (rlnDefocusU, rlnDefocusV)")
                .with_path(&table.path));
        }
        let groups: Vec<(usize, f64)> =
            table.optics_groups.iter().map(|g| (image_box, g.pixel_size)).collect();
        let grid = TrainingGrid::new(&groups, box_size);
        let mut views = Vec::with_capacity(table.len());
        let mut ctfs = Vec::with_capacity(table.len());
        let mut group_of = Vec::with_capacity(table.len());
        for p in &table.particles {
            let [rot, tilt, psi] = p.euler_deg;
            let pixel = grid.groups[p.optics_group].pixel_size;
            views.push(View::new(&euler_to_matrix(rot, tilt, psi), p.origin_angstrom, pixel));
            ctfs.push(Ctf::new(&table.optics_groups[p.optics_group], &p.ctf));
            group_of.push(p.optics_group);
        }
        let validation = validation_split(&halves, validation_fraction, validation_max, seed)
            .map_err(|e| e.with_path(&table.path))?;
        Ok(ParticleSet {
            grid,
            views,
            shifts: Vec::new(),
            ctfs,
            groups: group_of,
            premultiplied: table.optics_groups.iter().map(|g| g.ctf_premultiplied).collect(),
            halves,
            validation,
        })
    }

    /// Particle `i`'s view, moved by its refined shift.
    pub fn view(&self, i: usize) -> View {
        let mut view = self.views[i];
        if let Some(shift) = self.shifts.get(i) {
            for (s, a) in view.shift_px.iter_mut().zip(shift) {
                *s += a / view.pixel_size;
            }
        }
        view
    }

    /// Number of particles.
    pub fn len(&self) -> usize {
        self.views.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// Training box in pixels.
    pub fn box_size(&self) -> usize {
        self.grid.box_size
    }

    /// Field of view of the training box in Å (the same for every optics group).
    pub fn box_length(&self) -> f64 {
        self.grid.box_size as f64 * self.grid.groups[0].pixel_size
    }

    /// The particles of half `half` that train (`validation == false`) or validate.
    pub fn members(&self, half: u8, validation: bool) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.halves[i] == half && self.validation[i] == validation).collect()
    }

    /// Bytes per particle of this set in memory (views, refined shifts, CTFs, flags).
    pub const BYTES_PER_PARTICLE: usize = std::mem::size_of::<View>()
        + std::mem::size_of::<[f32; 2]>()
        + std::mem::size_of::<Ctf>()
        + std::mem::size_of::<usize>()
        + 2;
}

/// A seeded validation subset of each half: `fraction` of its particles, between 1 and `max`.
fn validation_split(halves: &[u8], fraction: f64, max: usize, seed: u64) -> Result<Vec<bool>> {
    let mut validation = vec![false; halves.len()];
    for half in [1u8, 2] {
        let mut members: Vec<usize> = (0..halves.len()).filter(|&i| halves[i] == half).collect();
        if members.len() < 4 {
            return Err(Error::invalid(format!(
                "half set {half} has {} particles; training needs at least 4 per half",
                members.len()
            ))
            .in_field("rlnRandomSubset"));
        }
        let count = ((members.len() as f64 * fraction).round() as usize).clamp(1, max.max(1));
        let mut rng = Rng::keyed(seed, &[0x0056_414c, half as u64]);
        for k in 0..count {
            let j = k + (rng.next_u64() % (members.len() - k) as u64) as usize;
            members.swap(k, j);
            validation[members[k]] = true;
        }
    }
    Ok(validation)
}

/// Where the images come from.
pub enum ImageSource {
    /// Read from the stacks batch by batch.
    Disk(ParticleImages),
    /// All prepared spectra in memory (`--preload-images`).
    Memory(Vec<Complex32>),
}

/// One batch on the training grid.
#[derive(Default)]
pub struct Batch {
    /// Particle indices.
    pub indices: Vec<usize>,
    /// Data spectra (B × half plane of the training box), divided by the data scale.
    pub spectra: Vec<Complex32>,
    /// Encoder input: real-space images (B × box²), divided by the data scale.
    pub images: Vec<f32>,
    /// CTF half planes (B × half plane), squared for premultiplied groups.
    pub ctf: Vec<f32>,
    /// Views.
    pub views: Vec<View>,
}

/// Per-thread plans and buffers of the loader.
struct LoaderScratch {
    grid: GridScratch,
    fft: Fft2,
    raw: Vec<f32>,
    bytes: Vec<u8>,
    spectrum: Vec<Complex32>,
    real: Vec<f32>,
}

/// Fills batches from a [`ParticleSet`] and an [`ImageSource`].
pub struct Loader {
    source: ImageSource,
    image_box: usize,
    /// Divides every image: the standard deviation of the data (noise, mostly).
    pub data_scale: f32,
    scratch: Vec<LoaderScratch>,
}

impl Loader {
    /// A loader for images of `image_box` pixels; `data_scale` 0 measures it from the first
    /// particles.
    ///
    /// # Errors
    /// An image that cannot be read, or one with NaN or infinite pixels.
    pub fn new(set: &ParticleSet, source: ImageSource, image_box: usize, data_scale: f32) -> Result<Self> {
        let threads = rayon::current_num_threads().max(1);
        let m = set.box_size();
        let scratch = (0..threads)
            .map(|_| LoaderScratch {
                grid: set.grid.scratch(),
                fft: Fft2::new(m, m),
                raw: vec![0.0; image_box * image_box],
                bytes: Vec::new(),
                spectrum: vec![Complex32::default(); (m / 2 + 1) * m],
                real: vec![0.0; m * m],
            })
            .collect();
        let mut loader = Loader { source, image_box, data_scale: 1.0, scratch };
        loader.data_scale = if data_scale > 0.0 { data_scale } else { loader.measure_scale(set)? };
        Ok(loader)
    }

    /// Reads every particle into memory (prepared spectra, before scaling).
    ///
    /// # Errors
    /// As [`Loader::fill`].
    pub fn preload(&mut self, set: &ParticleSet) -> Result<()> {
        let hm = (set.box_size() / 2 + 1) * set.box_size();
        let mut all = vec![Complex32::default(); set.len() * hm];
        let mut batch = Batch::default();
        let chunk = 256;
        for (start, out) in (0..set.len()).step_by(chunk).zip(all.chunks_mut(chunk * hm)) {
            let indices: Vec<usize> = (start..(start + chunk).min(set.len())).collect();
            self.fill(set, &indices, &mut batch)?;
            for (o, s) in out.iter_mut().zip(&batch.spectra) {
                *o = *s * self.data_scale;
            }
        }
        self.source = ImageSource::Memory(all);
        Ok(())
    }

    /// Standard deviation of the training-box images of the first particles.
    fn measure_scale(&mut self, set: &ParticleSet) -> Result<f32> {
        let count = set.len().min(256);
        let mut batch = Batch::default();
        self.fill(set, &(0..count).collect::<Vec<_>>(), &mut batch)?;
        let n = batch.images.len() as f64;
        let mean = batch.images.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = batch.images.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        Ok(if var > 0.0 { var.sqrt() as f32 } else { 1.0 })
    }

    /// Fills `batch` with the particles `indices`.
    ///
    /// # Errors
    /// An unreadable image, or NaN or infinite pixels (naming the particle).
    pub fn fill(&mut self, set: &ParticleSet, indices: &[usize], batch: &mut Batch) -> Result<()> {
        let m = set.box_size();
        let (hm, mm) = ((m / 2 + 1) * m, m * m);
        let b = indices.len();
        batch.indices.clear();
        batch.indices.extend_from_slice(indices);
        batch.spectra.resize(b * hm, Complex32::default());
        batch.images.resize(b * mm, 0.0);
        batch.ctf.resize(b * hm, 0.0);
        batch.views.clear();
        batch.views.extend(indices.iter().map(|&i| set.view(i)));
        let per = b.div_ceil(self.scratch.len()).max(1);
        let (source, image_box, scale) = (&self.source, self.image_box, 1.0 / self.data_scale);
        self.scratch
            .par_iter_mut()
            .zip(batch.spectra.par_chunks_mut(per * hm))
            .zip(batch.images.par_chunks_mut(per * mm))
            .zip(batch.ctf.par_chunks_mut(per * hm))
            .zip(indices.par_chunks(per))
            .try_for_each(|((((scratch, spectra), images), ctf), ids)| {
                for (k, &i) in ids.iter().enumerate() {
                    let spectrum = &mut spectra[k * hm..(k + 1) * hm];
                    match source {
                        ImageSource::Disk(images) => {
                            images.read(i, &mut scratch.raw, &mut scratch.bytes)?;
                            if let Some(bad) = scratch.raw.iter().position(|v| !v.is_finite()) {
                                return Err(Error::invalid(format!(
                                    "the image of particle {} has a NaN or infinite pixel (at {bad})",
                                    i + 1
                                ))
                                .at_row(i + 1)
                                .in_field("rlnImageName"));
                            }
                            debug_assert_eq!(scratch.raw.len(), image_box * image_box);
                            set.grid.prepare(set.groups[i], &scratch.raw, &mut scratch.grid, spectrum);
                        }
                        ImageSource::Memory(all) => spectrum.copy_from_slice(&all[i * hm..(i + 1) * hm]),
                    }
                    spectrum.iter_mut().for_each(|v| *v *= scale);
                    scratch.spectrum.copy_from_slice(spectrum);
                    scratch.fft.inverse(&mut scratch.spectrum, &mut scratch.real);
                    origin_to_image_centre(&scratch.real, &mut images[k * mm..(k + 1) * mm], [m, m]);
                    let c = &mut ctf[k * hm..(k + 1) * hm];
                    let group = set.groups[i];
                    set.ctfs[i].fill_half_plane(m, set.grid.groups[group].pixel_size, false, c);
                    if set.premultiplied[group] {
                        c.iter_mut().for_each(|v| *v *= *v);
                    }
                }
                Ok(())
            })
    }
}
