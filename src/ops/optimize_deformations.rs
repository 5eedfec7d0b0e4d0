//! `optimize-deformations`: from a particle STAR file and a consensus map to per-particle
//! latents and two half models, with checkpoints, logs and plots under
//! `OUT/forward_deformations/`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::analysis::Pca;
use crate::io::atoms::write_pdb;
use crate::io::images::{ImagePaths, ParticleImages};
use crate::io::mrc::{Map, Mode, write_volume};
use crate::io::npy::{NpyArray, write_npy};
use crate::io::relion::particles_to_star;
use crate::model::{DEFAULT_SMOOTHING, FitOptions, GaussianModel};
use crate::nn::DecoderConfig;
use crate::ops::gaussian_model::{build, map_centre, model_atoms, write_outputs};
use crate::ops::reconstruct::half_sets;
use crate::particles::ParticleTable;
use crate::plot::{LineChart, Series, image_grid};
use crate::training::{
    BatchProgress, ImageSource, Loader, ParticleSet, RunInputs, TrainOptions, TrainedModel, Trainer,
    read_checkpoint, table_fingerprint,
};
use crate::{Error, Result};

/// Everything the command takes besides the STAR file and the map.
#[derive(Clone, Debug)]
pub struct DeformationOptions {
    /// Schedule and settings of training.
    pub train: TrainOptions,
    /// Gaussians of the consensus model (pseudo-atoms; ignored with an atomic model).
    pub n_gaussians: usize,
    /// Threshold of the map for placing Gaussians (default: Otsu's).
    pub initial_threshold: Option<f32>,
    /// Resolution (Å) the consensus model is fitted to.
    pub initial_resolution: f64,
    /// Docked atomic model: one Gaussian per residue.
    pub atomic_model: Option<PathBuf>,
    /// Gaussians outside this mask (value < 0.5 at their centre) do not move.
    pub mask: Option<Map>,
    /// Latent dimensions.
    pub latent: usize,
    /// Decoder shape (frequencies, width, depth).
    pub decoder: DecoderConfig,
    /// Training box (Fourier-cropped from the particle box when smaller).
    pub box_size: usize,
    /// Hold every particle's prepared image in memory.
    pub preload: bool,
    /// Resident memory limit in bytes.
    pub max_memory: Option<u64>,
    /// Fraction of each half held out for the noise spectrum (at most 1000 particles).
    pub validation_fraction: f64,
    /// Resume from this checkpoint.
    pub checkpoint: Option<PathBuf>,
    /// Directory relative image paths are relative to.
    pub project_dir: Option<PathBuf>,
    /// Path of the consensus map, recorded in checkpoints for the commands that follow.
    pub initial_model_path: Option<PathBuf>,
    /// Width (Å) of the smoothing of the learnt displacements, recorded in checkpoints for the
    /// commands that follow ([`crate::model::DisplacementSmoothing`]).
    pub deformation_smoothing: f32,
}

impl Default for DeformationOptions {
    fn default() -> Self {
        DeformationOptions {
            train: TrainOptions::default(),
            n_gaussians: 10000,
            initial_threshold: None,
            initial_resolution: 8.0,
            atomic_model: None,
            mask: None,
            latent: 6,
            decoder: DecoderConfig::default(),
            box_size: 128,
            preload: false,
            max_memory: None,
            validation_fraction: 0.05,
            checkpoint: None,
            project_dir: None,
            initial_model_path: None,
            deformation_smoothing: DEFAULT_SMOOTHING,
        }
    }
}

/// Where the outputs go.
#[derive(Clone, Debug)]
pub struct Layout {
    /// `OUT/forward_deformations`.
    pub dir: PathBuf,
}

impl Layout {
    /// The layout under `out`.
    pub fn new(out: &Path) -> Self {
        Layout { dir: out.join("forward_deformations") }
    }
    /// Checkpoint directory.
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }
    /// Checkpoint after `epochs` epochs.
    pub fn checkpoint(&self, epochs: usize) -> PathBuf {
        self.checkpoints().join(format!("epoch_{epochs:04}.ckpt"))
    }
    /// The final checkpoint.
    pub fn final_checkpoint(&self) -> PathBuf {
        self.checkpoints().join("checkpoint_final.ckpt")
    }
    /// Per-epoch log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("training_log.csv")
    }
    /// Plots.
    pub fn plots(&self) -> PathBuf {
        self.dir.join("plots")
    }
    /// The STAR copy of the input with latents.
    pub fn particles(&self) -> PathBuf {
        self.dir.join("particles.star")
    }
    /// Latent means (P × latent, float32).
    pub fn latents(&self) -> PathBuf {
        self.dir.join("latents.npy")
    }
    /// Consensus model of a half: `consensus_half{h}.pdb` / `.mrc`.
    pub fn consensus(&self, half: u8, extension: &str) -> PathBuf {
        self.dir.join(format!("consensus_half{half}.{extension}"))
    }
    /// The Gaussian model fitted to the input map.
    pub fn initial_model(&self) -> PathBuf {
        self.dir.join("initial_model")
    }
}

/// Estimated resident bytes of a run (metadata per particle, preloaded images, batch buffers,
/// networks and optimiser moments).
pub fn memory_estimate(
    particles: usize,
    box_size: usize,
    gaussians: usize,
    batch: usize,
    preload: bool,
) -> u64 {
    let (p, m, ng, b) = (particles as u64, box_size as u64, gaussians as u64, batch as u64);
    let half_plane = (m / 2 + 1) * m;
    // table with its STAR text (~400 B per row measured for 11 columns, tests/memory.rs),
    // training set, latents
    let per_particle = 640 + ParticleSet::BYTES_PER_PARTICLE as u64 + 64;
    let preloaded = if preload { p * half_plane * 8 } else { 0 };
    // deformed positions and gradients (~8 copies), images, spectra, CTFs
    let batch_bytes = b * (ng * 3 * 4 * 8 + m * m * 4 * 4 + half_plane * 8 * 3);
    // encoder (m/2)²·256 weights ×3 (Adam) per half, decoder tiles, FFT plans
    let networks = 2 * 3 * 4 * ((m / 2) * (m / 2) * 256 + 64 * 1024) + 64 * 1024 * 1024;
    p * per_particle + preloaded + batch_bytes + networks
}

/// Callbacks of a run: progress, log lines and an abort check.
pub trait Monitor {
    /// A batch is done.
    fn batch(&mut self, _progress: BatchProgress) {}
    /// An epoch starts (total epochs, particles per epoch).
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _particles: usize) {}
    /// A line for the user.
    fn message(&mut self, _text: &str) {}
    /// Latents of `done` of `total` particles refined on their images.
    fn refined(&mut self, _done: usize, _total: usize) {}
    /// Whether to stop now (e.g. RELION's abort file).
    fn abort(&mut self) -> bool {
        false
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All epochs ran; outputs written.
    Finished,
    /// Stopped on request after `epochs` epochs; the last checkpoint stands.
    Aborted {
        /// Epochs completed.
        epochs: usize,
    },
}

/// Runs (or resumes) training and writes every output.
///
/// # Errors
/// Unreadable or inconsistent inputs (named with file and field), an unreadable image, or a
/// non-finite loss (naming the particle; the last checkpoint is kept).
pub fn optimize_deformations(
    star: &Path,
    table: ParticleTable,
    map: &Map,
    options: &DeformationOptions,
    out: &Path,
    monitor: &mut dyn Monitor,
) -> Result<Outcome> {
    let layout = Layout::new(out);
    std::fs::create_dir_all(layout.checkpoints()).map_err(|e| Error::io(e, &layout.checkpoints()))?;
    std::fs::create_dir_all(layout.plots()).map_err(|e| Error::io(e, &layout.plots()))?;
    let paths = ImagePaths { project_dir: options.project_dir.clone(), ..Default::default() };
    let images = ParticleImages::open(&table, &paths)?;
    let image_box = images.shape()[0];
    check_map(star, &table, map, image_box)?;
    if let Some(mask) = &options.mask {
        if mask.volume.shape != map.volume.shape {
            return Err(Error::mismatch(format!(
                "the mask is {:?} voxels but the map is {:?}",
                mask.volume.shape, map.volume.shape
            ))
            .in_field("--mask-file"));
        }
    }
    let fingerprint = table_fingerprint(&table);
    let header =
        options.checkpoint.as_deref().map(|p| read_checkpoint(p, fingerprint, table.len())).transpose()?;
    let box_size = header.as_ref().map_or(options.box_size.min(image_box), |h| h.box_size);
    let (halves, assigned) = match &header {
        Some(h) => (h.halves.clone(), false),
        None => half_sets(&table, options.train.seed),
    };
    let ng_guess = options.n_gaussians;
    let need = memory_estimate(table.len(), box_size, ng_guess, options.train.batch_size, options.preload);
    if let Some(limit) = options.max_memory {
        if need > limit {
            return Err(Error::invalid(format!(
                "this run needs about {:.2} GB ({} particles, box {box_size}, {} Gaussians, batch {}{}), more than \
                 --max-memory {:.2} GB; lower the batch size or the training box{}",
                need as f64 / 1e9,
                table.len(),
                ng_guess,
                options.train.batch_size,
                if options.preload { ", preloaded" } else { "" },
                limit as f64 / 1e9,
                if options.preload { ", or stream the images (drop --preload-images)" } else { "" }
            ))
            .in_field("--max-memory"));
        }
    }
    let set = ParticleSet::new(
        &table,
        image_box,
        box_size,
        halves,
        options.validation_fraction,
        1000,
        options.train.seed,
    )?;
    let data_scale = header.as_ref().map_or(0.0, |h| h.data_scale);
    let mut loader = Loader::new(&set, ImageSource::Disk(images), image_box, data_scale)?;
    if options.preload {
        monitor.message(&format!("preloading {} particle images", set.len()));
        loader.preload(&set)?;
    }
    let mut trainer = match header {
        Some(h) => {
            monitor.message(&format!("resuming after epoch {} of {}", h.epoch, options.train.n_epochs));
            Trainer::resume(options.train.clone(), set, loader, h, fingerprint)?
        }
        None => {
            let consensus = initial_model(map, options, &layout, monitor)?;
            let active = options.mask.as_ref().map(|m| active_gaussians(&consensus, m));
            if let Some(a) = &active {
                monitor.message(&format!(
                    "{} of {} Gaussians inside the mask may move",
                    a.iter().filter(|&&b| b).count(),
                    a.len()
                ));
            }
            Trainer::new(
                options.train.clone(),
                set,
                loader,
                consensus,
                options.latent,
                options.decoder,
                active,
                fingerprint,
            )
        }
    };
    if assigned {
        monitor.message("no rlnRandomSubset column: half sets drawn at random (written to particles.star)");
    }
    write_log(&layout, &trainer)?;
    let inputs = recorded_for_later(star, options);
    let per_epoch = trainer.set.len() - trainer.set.validation.iter().filter(|&&v| v).count();
    while !trainer.finished() {
        monitor.epoch_start(trainer.epoch, trainer.options.n_epochs, per_epoch);
        if trainer.refit_due() {
            monitor.message(&format!(
                "epoch {:>3}: every particle's latent refined on its image; the decoder now refits on these",
                trainer.epoch + 1
            ));
            refine_with_progress(&mut trainer, monitor, Trainer::prepare_refit)?;
        }
        let records = trainer.run_epoch(&mut |p| {
            monitor.batch(p);
            !monitor.abort()
        })?;
        let Some(records) = records else {
            return Ok(Outcome::Aborted { epochs: trainer.epoch });
        };
        for r in &records {
            monitor.message(&format!(
                "epoch {:>3} half {}: loss {:.5} (validation {:.5}), λ {:.3e}, RMS displacement {:.2} Å{}",
                r.epoch + 1,
                r.half,
                r.data,
                r.validation,
                r.lambda,
                r.rms_displacement,
                if r.consensus_update > 0.0 {
                    format!(", consensus updated ({:.2} Å)", r.consensus_update)
                } else {
                    String::new()
                }
            ));
        }
        write_log(&layout, &trainer)?;
        write_epoch_plots(&layout, &mut trainer)?;
        let every = trainer.options.checkpoint_interval.max(1);
        if trainer.epoch % every == 0 && !trainer.finished() {
            trainer.save(&layout.checkpoint(trainer.epoch), &inputs)?;
        }
    }
    let steps = trainer.options.latent_refinement.steps;
    monitor.message(&if steps > 0 {
        format!(
            "latents: every particle encoded by its half's model, then refined on its image ({steps} steps)"
        )
    } else {
        "latents: every particle encoded by its half's encoder".to_string()
    });
    refine_with_progress(&mut trainer, monitor, Trainer::infer_latents)?;
    trainer.save(&layout.final_checkpoint(), &inputs)?;
    trainer.save(&layout.checkpoint(trainer.epoch), &inputs)?;
    write_results(&layout, &trainer, &table, map, star)?;
    Ok(Outcome::Finished)
}

/// Runs a pass of latent refinement over every particle, telling `monitor` how far it is.
fn refine_with_progress(
    trainer: &mut Trainer,
    monitor: &mut dyn Monitor,
    pass: fn(&mut Trainer, &mut dyn FnMut(usize)) -> Result<()>,
) -> Result<()> {
    let (total, mut done) = (trainer.set.len(), 0);
    pass(trainer, &mut |b| {
        done += b;
        monitor.refined(done, total);
    })
}

/// What a checkpoint records for later commands: the inputs (absolute paths), so that they find
/// them, and the width of the displacements' smoothing.
fn recorded_for_later(star: &Path, options: &DeformationOptions) -> Vec<(String, String)> {
    let absolute =
        |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    let mut out = vec![
        (RunInputs::STAR.to_string(), absolute(star)),
        (TrainedModel::SMOOTHING.to_string(), options.deformation_smoothing.to_string()),
    ];
    if let Some(map) = &options.initial_model_path {
        out.push((RunInputs::MAP.to_string(), absolute(map)));
    }
    if let Some(dir) = &options.project_dir {
        out.push((RunInputs::PROJECT_DIR.to_string(), absolute(dir)));
    }
    out
}

/// The map must have the particles' box and pixel size.
fn check_map(star: &Path, table: &ParticleTable, map: &Map, image_box: usize) -> Result<()> {
    let [nx, ny, nz] = map.volume.shape;
    if nx != ny || ny != nz {
        return Err(Error::invalid(format!("the consensus map is {nx}×{ny}×{nz}; it must be a cube"))
            .in_field("--initial-model"));
    }
    if nx != image_box {
        return Err(Error::mismatch(format!(
            "the consensus map has box {nx} but the particles of {} have box {image_box}",
            star.display()
        ))
        .in_field("--initial-model"));
    }
    let map_pixel = map.voxel_size[0] as f64;
    let particle_pixel = table.optics_of(0).pixel_size;
    if (map_pixel - particle_pixel).abs() > 0.01 * particle_pixel {
        return Err(Error::mismatch(format!(
            "the consensus map has pixel size {map_pixel:.4} Å but the particles of {} have {particle_pixel:.4} Å",
            star.display()
        ))
        .in_field("--initial-model"));
    }
    Ok(())
}

/// The consensus Gaussians fitted to the low-passed map (or placed on a docked model).
fn initial_model(
    map: &Map,
    options: &DeformationOptions,
    layout: &Layout,
    monitor: &mut dyn Monitor,
) -> Result<GaussianModel> {
    let fit = FitOptions {
        count: options.n_gaussians,
        resolution: options.initial_resolution,
        threshold: options.initial_threshold,
        seed: options.train.seed,
        ..FitOptions::default()
    };
    monitor.message(&format!(
        "fitting {} Gaussians to the consensus map at {:.1} Å",
        if options.atomic_model.is_some() { "residue".to_string() } else { options.n_gaussians.to_string() },
        options.initial_resolution
    ));
    let summary = build(map, options.atomic_model.as_deref(), &fit)?;
    write_outputs(&layout.initial_model(), map, &summary)?;
    monitor.message(&format!(
        "consensus model: {} Gaussians, FSC 0.9 against the map at {:.1} Å",
        summary.model.len(),
        summary.resolution_at_0_9
    ));
    Ok(summary.model)
}

/// Gaussians whose centre lies where the mask is ≥ 0.5.
pub fn active_gaussians(model: &GaussianModel, mask: &Map) -> Vec<bool> {
    let n = mask.volume.shape[0];
    let pixel = mask.voxel_size[0] as f64;
    model
        .points()
        .iter()
        .map(|p| {
            let v = p.map(|c| (c as f64 / pixel + (n / 2) as f64).round());
            if v.iter().any(|&c| c < 0.0 || c >= n as f64) {
                return false;
            }
            let [x, y, z] = v.map(|c| c as usize);
            mask.volume.data[(z * n + y) * n + x] >= 0.5
        })
        .collect()
}

fn write_log(layout: &Layout, trainer: &Trainer) -> Result<()> {
    let path = layout.log();
    let mut text = String::from(crate::training::EpochRecord::CSV_HEADER);
    text.push('\n');
    for r in &trainer.history {
        text.push_str(&r.to_csv());
        text.push('\n');
    }
    std::fs::write(&path, text).map_err(|e| Error::io(e, &path))
}

fn write_epoch_plots(layout: &Layout, trainer: &mut Trainer) -> Result<()> {
    let dir = layout.plots();
    let series = |half: u8, f: fn(&crate::training::EpochRecord) -> f64, label: &str| Series {
        label: format!("{label} half {half}"),
        points: trainer
            .history
            .iter()
            .filter(|r| r.half == half)
            .map(|r| ((r.epoch + 1) as f64, f(r)))
            .collect(),
    };
    let chart = |title: &str, y: &str, series: Vec<Series>| LineChart {
        title: title.into(),
        x_label: "epoch".into(),
        y_label: y.into(),
        series,
        ..Default::default()
    };
    chart(
        "data loss (whitened, per pixel)",
        "loss",
        vec![
            series(1, |r| r.data, "train"),
            series(2, |r| r.data, "train"),
            series(1, |r| r.validation, "validation"),
            series(2, |r| r.validation, "validation"),
        ],
    )
    .write_png(dir.join("losses.png"))?;
    chart("elastic weight", "lambda", vec![series(1, |r| r.lambda, "λ"), series(2, |r| r.lambda, "λ")])
        .write_png(dir.join("regularisation.png"))?;
    chart(
        "deformation",
        "RMS displacement (Å)",
        vec![series(1, |r| r.rms_displacement, "RMS"), series(2, |r| r.rms_displacement, "RMS")],
    )
    .write_png(dir.join("displacement.png"))?;
    if trainer.epoch > trainer.options.warmup_epochs {
        latent_scatter(trainer).write_png(dir.join("latent_pca.png"))?;
    }
    particle_gallery(trainer, &dir.join("particles.png"))
}

/// PC1 against PC2 of the latent means, per half.
fn latent_scatter(trainer: &Trainer) -> LineChart {
    let d = trainer.latent();
    let mut series = Vec::new();
    for half in [1u8, 2] {
        let rows: Vec<usize> = (0..trainer.set.len()).filter(|&i| trainer.set.halves[i] == half).collect();
        let points: Vec<f32> =
            rows.iter().flat_map(|&i| trainer.latents[i * d..(i + 1) * d].iter().copied()).collect();
        let pca = Pca::fit(&points, d);
        let xy = points
            .chunks_exact(d)
            .map(|p| (pca.project(p, 0), if d > 1 { pca.project(p, 1) } else { 0.0 }))
            .collect();
        series.push(Series { label: format!("half {half}"), points: xy });
    }
    LineChart {
        title: format!("latent space after epoch {} (PCA)", trainer.epoch),
        x_label: "PC1".into(),
        y_label: "PC2".into(),
        series,
        dots: true,
        ..Default::default()
    }
}

/// A few training particles of half 1 (top row, low-passed to the training box) above their
/// rendered, CTF-modulated models.
fn particle_gallery(trainer: &mut Trainer, path: &Path) -> Result<()> {
    use crate::fft::{Complex32, Fft2, origin_to_image_centre};
    use crate::training::{Latents, evaluate_batch};
    let members: Vec<usize> = trainer.set.members(1, false).into_iter().take(6).collect();
    if members.is_empty() {
        return Ok(());
    }
    let m = trainer.set.box_size();
    let mut batch = crate::training::Batch::default();
    trainer.loader.fill(&trainer.set, &members, &mut batch)?;
    let half = &trainer.halves[0];
    let deforming = trainer.epoch > trainer.options.warmup_epochs;
    let ng = half.consensus.len();
    let mut work = crate::training::Work::default();
    let loss = crate::imaging::FourierLoss::new(m, crate::imaging::flat_weights(m, (m / 2) as f64));
    let remover = trainer.rigid_motion_remover(0);
    let ctx = crate::training::StepContext::forward_only(
        &loss,
        trainer.active.as_deref(),
        trainer.set.box_length() as f32,
        remover.as_ref(),
    );
    let shells = crate::imaging::half_plane_shells(m);
    // the latents the last epoch used or found (a batch's encoder means, or refined ones)
    let d = trainer.latent();
    let z: Vec<f32> =
        members.iter().flat_map(|&i| trainer.latents[i * d..(i + 1) * d].iter().copied()).collect();
    let latents = if deforming { Latents::Given(&z) } else { Latents::Consensus };
    evaluate_batch(half, &batch, &ctx, latents, &mut work, None, &shells)?;
    let mut rendered = vec![0.0f32; members.len() * m * m];
    crate::imaging::splat::project_batch(
        &work.deformed()[..members.len() * ng * 3],
        &half.consensus.amplitudes,
        &half.consensus.widths,
        &batch.views,
        m,
        &mut rendered,
    );
    // CTF-modulate the renders as the loss sees them
    let hm = (m / 2 + 1) * m;
    let mut scratch = crate::imaging::LossScratch::new(m);
    let mut fft = Fft2::new(m, m);
    let mut spectrum = vec![Complex32::default(); hm];
    let mut real = vec![0.0f32; m * m];
    for (k, image) in rendered.chunks_exact_mut(m * m).enumerate() {
        crate::imaging::image_spectrum(image, &mut scratch, &mut spectrum);
        spectrum.iter_mut().zip(&batch.ctf[k * hm..(k + 1) * hm]).for_each(|(s, &c)| *s *= c);
        fft.inverse(&mut spectrum, &mut real);
        origin_to_image_centre(&real, image, [m, m]);
    }
    let mut tiles: Vec<&[f32]> = batch.images.chunks_exact(m * m).collect();
    tiles.extend(rendered.chunks_exact(m * m));
    image_grid(&tiles, m, members.len(), 128).write_png(path)
}

/// Final outputs: STAR with latents, latents.npy, consensus per half (PDB + MRC).
fn write_results(
    layout: &Layout,
    trainer: &Trainer,
    table: &ParticleTable,
    map: &Map,
    star: &Path,
) -> Result<()> {
    let d = trainer.latent();
    let mut file = particles_to_star(table, None)?;
    let t = file
        .blocks
        .iter_mut()
        .filter_map(|b| b.table_mut())
        .find(|t| t.has_column("rlnImageName"))
        .ok_or_else(|| Error::missing("no particle table to write").with_path(star))?;
    t.set_column("rlnRandomSubset", trainer.set.halves.iter().map(|h| h.to_string()))?;
    for k in 0..d {
        let values = (0..trainer.set.len()).map(|i| format!("{:.6}", trainer.latents[i * d + k]));
        t.set_column(&format!("cryomotionLatent{}", k + 1), values)?;
    }
    // refined shifts beside the input origins (which stay, so the checkpoint still matches)
    let shifts = &trainer.set.shifts;
    if !shifts.is_empty() {
        for (r, axis) in ["X", "Y"].iter().enumerate() {
            let values = shifts.iter().map(|s| format!("{:.4}", s[r]));
            t.set_column(&format!("cryomotionShift{axis}Angst"), values)?;
        }
    }
    file.write(layout.particles())?;
    let bytes: Vec<u8> = trainer.latents.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(layout.latents(), &NpyArray::plain("<f4", vec![trainer.set.len(), d], bytes)?)?;
    let n = map.volume.shape[0];
    let pixel = map.voxel_size[0] as f64;
    let centre = map_centre(map);
    for (h, half) in trainer.halves.iter().enumerate() {
        let model = &half.consensus;
        write_pdb(layout.consensus(h as u8 + 1, "pdb"), &[model_atoms(model, centre)])?;
        write_volume(
            layout.consensus(h as u8 + 1, "mrc"),
            &model.render(n, pixel),
            pixel as f32,
            map.origin,
            Mode::Float32,
        )?;
    }
    let mut summary =
        std::fs::File::create(layout.dir.join("summary.txt")).map_err(|e| Error::io(e, &layout.dir))?;
    let _ = writeln!(
        summary,
        "epochs {}\nparticles {}\nlatent {}\ngaussians {}",
        trainer.epoch,
        trainer.set.len(),
        d,
        trainer.reference.len()
    );
    if !shifts.is_empty() {
        let rms = (shifts.iter().map(|s| (s[0] * s[0] + s[1] * s[1]) as f64).sum::<f64>()
            / shifts.len() as f64)
            .sqrt();
        let _ = writeln!(summary, "refined shifts {rms:.3} A RMS");
    }
    Ok(())
}
