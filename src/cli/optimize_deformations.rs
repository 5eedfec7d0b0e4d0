//! `cryomotion optimize-deformations`: learn every particle's deformation (DynaMight's options).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use cryomotion::io::mrc::read_map;
use cryomotion::io::relion::read_particles_star;
use cryomotion::model::DEFAULT_SMOOTHING;
use cryomotion::nn::DecoderConfig;
use cryomotion::ops::optimize_deformations::{
    DeformationOptions, Layout, Monitor, Outcome, optimize_deformations,
};
use cryomotion::training::{BatchProgress, LatentRefinement, LearningRates, ShiftRefinement, TrainOptions};
use indicatif::ProgressBar;

/// Learn a latent vector and a deformation of the consensus Gaussians for every particle.
///
/// Two independent models (half sets from rlnRandomSubset) each encode particle images into
/// latents and decode latents into displacements of Gaussian pseudo-atoms fitted to the
/// consensus map; images rendered from the deformed Gaussians at each particle's pose, with
/// its CTF, are compared with the data in Fourier space, whitened by the noise spectrum of a
/// held-out validation subset. An elastic term (weighted so that --regularization-factor 1
/// gives it the gradient norm of the data term) keeps deformations physical.
#[derive(clap::Args)]
#[command(
    args_override_self = true,
    after_help = "Outputs under OUT/forward_deformations/: particles.star (the input with
rlnRandomSubset and cryomotionLatent1..d columns), latents.npy, consensus_half{1,2}.pdb/.mrc,
checkpoints/epoch_NNNN.ckpt and checkpoint_final.ckpt, training_log.csv, plots/*.png
(losses, regularisation, displacement, latent_pca, particles), initial_model/ (the Gaussians
fitted to the map).

Example (RELION 5 runs the same command when its DynaMight job points at cryomotion):
  cryomotion optimize-deformations --refinement-star-file Refine3D/job010/run_data.star \\
      --output-directory DynaMight/job012/ --initial-model Refine3D/job010/run_class001.mrc \\
      --n-gaussians 10000 --regularization-factor 1 --n-threads 8"
)]
pub struct Args {
    /// Particle STAR file with poses and CTF (RELION 3.0–5).
    #[arg(long, value_name = "STAR")]
    refinement_star_file: PathBuf,
    /// Output directory (RELION's job directory).
    #[arg(long, value_name = "OUT")]
    output_directory: PathBuf,
    /// Consensus map (same box and pixel size as the particles).
    #[arg(long, value_name = "MRC")]
    initial_model: PathBuf,
    /// Docked atomic model (PDB/mmCIF in the map's frame): one Gaussian per residue.
    #[arg(long)]
    atomic_model: Option<PathBuf>,
    /// Map threshold for placing Gaussians (default: Otsu's threshold of the filtered map).
    #[arg(long)]
    initial_threshold: Option<f32>,
    /// Resolution (Å) the consensus Gaussians are fitted to; the halves share nothing beyond.
    #[arg(long, default_value_t = 8.0)]
    initial_resolution: f64,
    /// Mask (map box): Gaussians where it is below 0.5 do not move.
    #[arg(long)]
    mask_file: Option<PathBuf>,
    /// Resume from this checkpoint (continues exactly as an uninterrupted run).
    #[arg(long)]
    checkpoint_file: Option<PathBuf>,
    /// Gaussians in the consensus model.
    #[arg(long, default_value_t = 10_000)]
    n_gaussians: usize,
    /// Latent dimensions.
    #[arg(long, default_value_t = 6)]
    n_latent_dimensions: usize,
    /// Positional-encoding frequencies of the decoder.
    #[arg(long, default_value_t = 10)]
    n_positional_encoding_dimensions: usize,
    /// Hidden layers of the decoder.
    #[arg(long, default_value_t = 8)]
    n_linear_layers: usize,
    /// Width of the decoder's hidden layers.
    #[arg(long, default_value_t = 32)]
    n_neurons_per_layer: usize,
    /// Epochs without deformation at the start (the consensus fits the data).
    #[arg(long, default_value_t = 3)]
    n_warmup_epochs: usize,
    /// Epochs in all, warm-up included: exactly this many run.
    #[arg(long, default_value_t = 50)]
    n_epochs: usize,
    /// Elastic weight: 1 gives the elastic term the gradient norm of the data term (balanced
    /// each deforming epoch while the KL weight ramps up, then held).
    #[arg(long, default_value_t = 1.0)]
    regularization_factor: f64,
    /// A fixed elastic weight λ (Å⁻² per unit of the whitened data loss) instead of the
    /// balanced one; for reproducing a run's λ exactly.
    #[arg(long)]
    regularization_weight: Option<f64>,
    /// KL weight factor (β = factor / box²).
    #[arg(long, default_value_t = 0.01)]
    kld_factor: f64,
    /// Deforming epochs over which the KL weight ramps up from 0 (0: full weight at once).
    #[arg(long, default_value_t = 10)]
    kld_ramp_epochs: usize,
    /// Mean KL per particle (nats) below which the KL term exerts no pull ("free bits"): the
    /// posterior cannot collapse onto the prior before the decoder has learnt to use it.
    #[arg(long, default_value_t = 4.0)]
    kld_free_nats: f64,
    /// Adam steps that refine each particle's final latent on its own image, from the
    /// encoder's mean (0: the encoder's means, as DynaMight, and no decoder refit). The encoder
    /// memorises its training images at low SNR; these steps reach each image's own optimum.
    #[arg(long, default_value_t = 20)]
    latent_refinement_steps: usize,
    /// Step size of the latent refinement (latent units).
    #[arg(long, default_value_t = 0.1)]
    latent_refinement_step_size: f32,
    /// Refine each particle's image shift with its latent (before the decoder refit and at the
    /// end): the expected error of the STAR file's origins, Å per axis, as the prior's width
    /// (0: the origins are kept). Other cryomotion commands on this run apply the refined
    /// shifts; the output STAR keeps the input origins.
    #[arg(long, default_value_t = 0.0, value_name = "ANGSTROM")]
    shift_refinement_sigma: f32,
    /// The last epochs refit the decoder: each particle's latent is refined on its image, and
    /// the decoder trains on these instead of the encoder's noisy ones (0: never, as DynaMight;
    /// default: three fifths of --n-epochs, 30 of 50).
    #[arg(long)]
    decoder_refit_epochs: Option<usize>,
    /// Width (Å) of the smoothing of the learnt displacements that the later commands use: each
    /// Gaussian's displacement is a local linear fit to those around it, weighted by their
    /// amplitude and a Gaussian of this standard deviation (0: only Gaussians without density
    /// move with their neighbours).
    #[arg(long, default_value_t = DEFAULT_SMOOTHING, value_name = "ANGSTROM")]
    deformation_smoothing: f32,
    /// Epochs between consensus updates from the least-deformed particles (0: never).
    #[arg(long, default_value_t = 15)]
    consensus_update_interval: usize,
    /// Particles pooled for a consensus update.
    #[arg(long, default_value_t = 100)]
    consensus_update_pooled_particles: usize,
    /// Whiten the loss with the noise spectrum of held-out particles.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    use_data_normalization: bool,
    /// Particles per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Training box: images are Fourier-cropped to it (the map's box when larger).
    #[arg(long, default_value_t = 128)]
    box_size_for_training: usize,
    /// Epochs between checkpoints (one is always written at the end).
    #[arg(long, default_value_t = 5)]
    checkpoint_interval: usize,
    /// Hold all images in memory instead of streaming them from the stacks.
    #[arg(long)]
    preload_images: bool,
    /// Resident memory limit in GB (refuses a run that would exceed it).
    #[arg(long, value_name = "GB")]
    max_memory: Option<f64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    n_threads: Option<usize>,
    /// Accepted for DynaMight compatibility; images are read by the worker threads.
    #[arg(long, hide = true)]
    n_workers: Option<usize>,
    /// GPU to use (this build runs on the CPU and says so).
    #[arg(long)]
    gpu_id: Option<String>,
    /// Seed of every random draw (same seed and threads: same result).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directory relative image paths are relative to (default: the STAR file's directory and
    /// its parents).
    #[arg(long, value_name = "DIR")]
    project_dir: Option<PathBuf>,
    /// RELION job directory: write RELION_JOB_EXIT_SUCCESS/FAILURE/ABORTED there and stop on
    /// RELION_JOB_ABORT_NOW.
    #[arg(long, value_name = "DIR")]
    pipeline_control: Option<PathBuf>,
}

/// Progress bar, log file and RELION's abort file.
struct CliMonitor {
    bar: Option<ProgressBar>,
    log: Option<std::fs::File>,
    abort_file: Option<PathBuf>,
}

impl Monitor for CliMonitor {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, particles: usize) {
        if self.bar.is_none() {
            let bar = crate::cli::progress::bar(((epochs - epoch) * particles) as u64, "training");
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_message(format!("epoch {}/{epochs}", epoch + 1));
        }
    }

    fn batch(&mut self, p: BatchProgress) {
        if let Some(bar) = &self.bar {
            bar.inc(p.particles as u64);
            bar.set_message(format!("epoch {} half {} loss {:.4}", p.epoch + 1, p.half, p.loss));
        }
    }

    fn refined(&mut self, done: usize, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("refining latents {done}/{total}"));
        }
    }

    fn message(&mut self, text: &str) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(text),
            _ => println!("{text}"),
        }
        if let Some(log) = &mut self.log {
            let _ = writeln!(log, "{text}");
        }
    }

    fn abort(&mut self) -> bool {
        self.abort_file.as_ref().is_some_and(|f| f.exists())
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let control = args.pipeline_control.clone();
    let result = train(args);
    if let Some(dir) = &control {
        let name = match &result {
            Ok(Outcome::Finished) => "RELION_JOB_EXIT_SUCCESS",
            Ok(Outcome::Aborted { .. }) => "RELION_JOB_EXIT_ABORTED",
            Err(_) => "RELION_JOB_EXIT_FAILURE",
        };
        touch(&dir.join(name))?;
        if matches!(result, Ok(Outcome::Aborted { .. })) {
            let _ = std::fs::remove_file(dir.join("RELION_JOB_ABORT_NOW"));
        }
    }
    match result? {
        Outcome::Finished => Ok(ExitCode::SUCCESS),
        Outcome::Aborted { epochs } => {
            eprintln!("aborted on request after {epochs} complete epochs; resume from the last checkpoint");
            Ok(ExitCode::from(3))
        }
    }
}

fn touch(path: &Path) -> anyhow::Result<()> {
    std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn train(args: &Args) -> anyhow::Result<Outcome> {
    if args.n_epochs == 0 {
        bail!("--n-epochs must be at least 1");
    }
    let step = args.latent_refinement_step_size;
    if args.latent_refinement_steps > 0 && !(step.is_finite() && step > 0.0) {
        bail!("--latent-refinement-step-size must be a positive number, got {step}");
    }
    let sigma = args.shift_refinement_sigma;
    if !(sigma.is_finite() && sigma >= 0.0) {
        bail!("--shift-refinement-sigma must be 0 (off) or a positive width in Å, got {sigma}");
    }
    let smoothing = args.deformation_smoothing;
    if !(smoothing.is_finite() && smoothing >= 0.0) {
        bail!("--deformation-smoothing must be 0 (off) or a positive width in Å, got {smoothing}");
    }
    if sigma > 0.0 && args.latent_refinement_steps == 0 {
        bail!("--shift-refinement-sigma needs the per-image refinement: --latent-refinement-steps is 0");
    }
    if let Some(gpu) = &args.gpu_id {
        eprintln!("note: --gpu-id {gpu}: this cryomotion was built without CUDA; training runs on the CPU");
    }
    let threads =
        args.n_threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |t| t.get()));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build()?;
    let table = read_particles_star(&args.refinement_star_file)?;
    let map = read_map(&args.initial_model).with_context(|| "reading --initial-model")?;
    let mask = args.mask_file.as_ref().map(read_map).transpose().with_context(|| "reading --mask-file")?;
    let options = DeformationOptions {
        train: TrainOptions {
            n_epochs: args.n_epochs,
            warmup_epochs: args.n_warmup_epochs,
            batch_size: args.batch_size.max(1),
            regularization_factor: args.regularization_factor,
            regularization_weight: args.regularization_weight,
            kld_factor: args.kld_factor,
            kld_ramp_epochs: args.kld_ramp_epochs,
            kld_free_nats: args.kld_free_nats,
            consensus_update_interval: args.consensus_update_interval,
            consensus_update_pool: args.consensus_update_pooled_particles.max(1),
            checkpoint_interval: args.checkpoint_interval.max(1),
            data_normalization: args.use_data_normalization,
            max_shell: f64::INFINITY,
            rates: LearningRates::default(),
            seed: args.seed,
            latent_refinement: LatentRefinement {
                steps: args.latent_refinement_steps,
                step_size: args.latent_refinement_step_size,
                shifts: (args.shift_refinement_sigma > 0.0)
                    .then(|| ShiftRefinement::new(args.shift_refinement_sigma)),
            },
            decoder_refit_epochs: if args.latent_refinement_steps > 0 {
                args.decoder_refit_epochs.unwrap_or(args.n_epochs * 3 / 5)
            } else {
                0
            },
        },
        n_gaussians: args.n_gaussians,
        initial_threshold: args.initial_threshold,
        initial_resolution: args.initial_resolution,
        atomic_model: args.atomic_model.clone(),
        mask,
        latent: args.n_latent_dimensions.max(1),
        decoder: DecoderConfig {
            frequencies: args.n_positional_encoding_dimensions.max(1),
            width: args.n_neurons_per_layer.max(3),
            depth: args.n_linear_layers,
            ..DecoderConfig::default()
        },
        box_size: args.box_size_for_training,
        preload: args.preload_images,
        max_memory: args.max_memory.map(|gb| (gb * 1e9) as u64),
        validation_fraction: 0.05,
        checkpoint: args.checkpoint_file.clone(),
        project_dir: args.project_dir.clone(),
        initial_model_path: Some(args.initial_model.clone()),
        deformation_smoothing: args.deformation_smoothing,
    };
    let layout = Layout::new(&args.output_directory);
    std::fs::create_dir_all(&layout.dir).with_context(|| format!("creating {}", layout.dir.display()))?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(layout.dir.join("run.log")).ok();
    let mut monitor = CliMonitor {
        bar: None,
        log,
        abort_file: args.pipeline_control.as_ref().map(|d| d.join("RELION_JOB_ABORT_NOW")),
    };
    monitor.message(&format!(
        "cryomotion optimize-deformations: {} particles from {}, {threads} threads",
        table.len(),
        args.refinement_star_file.display()
    ));
    let star = args.refinement_star_file.clone();
    let outcome = pool.install(|| {
        optimize_deformations(&star, table, &map, &options, &args.output_directory, &mut monitor)
    });
    if let Some(bar) = &monitor.bar {
        bar.finish_and_clear();
    }
    let outcome = outcome?;
    if outcome == Outcome::Finished {
        monitor.message(&format!(
            "done after {} epochs: {} (latents), {} (checkpoint)",
            args.n_epochs,
            layout.particles().display(),
            layout.final_checkpoint().display()
        ));
    }
    Ok(outcome)
}
