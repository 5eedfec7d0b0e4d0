//! Opening a trained run for the commands that follow optimize-deformations: its checkpoint,
//! the particle file and consensus map it records (or given anew), checked against each other.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use cryomotion::io::cs::read_particles_cs;
use cryomotion::io::mrc::{Map, read_map};
use cryomotion::io::relion::read_particles_star;
use cryomotion::io::weights::Tensors;
use cryomotion::ops::optimize_deformations::Layout;
use cryomotion::particles::ParticleTable;
use cryomotion::training::{TrainedModel, table_fingerprint};

/// The arguments every command after optimize-deformations takes to find its run.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// Output directory of optimize-deformations.
    #[arg(value_name = "OUT")]
    pub output_directory: PathBuf,
    /// Checkpoint (default: OUT/forward_deformations/checkpoints/checkpoint_final.ckpt).
    #[arg(long)]
    pub checkpoint_file: Option<PathBuf>,
    /// The particle file (default: the one recorded in the checkpoint).
    #[arg(long, value_name = "STAR")]
    pub refinement_star_file: Option<PathBuf>,
    /// The consensus map (default: the one recorded in the checkpoint).
    #[arg(long, value_name = "MRC")]
    pub initial_model: Option<PathBuf>,
    /// Directory that relative image paths are relative to.
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// Threads (default: all cores).
    #[arg(long)]
    pub n_threads: Option<usize>,
}

/// How tile motions are fitted; caches written by another fit are stale.
const TILE_FIT: &str = "amplitude-weighted";

impl RunArgs {
    /// The checkpoint these arguments name.
    pub fn checkpoint(&self) -> PathBuf {
        self.checkpoint_file.clone().unwrap_or_else(|| Layout::new(&self.output_directory).final_checkpoint())
    }

    /// What the tile motions of this run depend on: the checkpoint (path, size, modification
    /// time), the particle count, the tiles, the box and how the tiles are fitted. A cache with
    /// another key is stale.
    pub fn tile_cache_key(
        &self,
        particles: usize,
        n_tiles: usize,
        box_size: usize,
    ) -> anyhow::Result<String> {
        let checkpoint = self.checkpoint();
        let meta =
            std::fs::metadata(&checkpoint).with_context(|| format!("reading {}", checkpoint.display()))?;
        let modified = meta.modified()?.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok(format!(
            "checkpoint {}\nbytes {}\nmodified {}.{:09}\nparticles {particles}\ntiles {n_tiles}\nbox {box_size}\nfit {TILE_FIT}\n",
            checkpoint.canonicalize().unwrap_or(checkpoint).display(),
            meta.len(),
            modified.as_secs(),
            modified.subsec_nanos()
        ))
    }

    /// Where optimize-inverse-deformations caches the tile motions, and their key.
    pub fn tile_cache(&self) -> (PathBuf, PathBuf) {
        let dir = self.output_directory.join("inverse_deformations");
        (dir.join("tile_motions.npy"), dir.join("tile_motions.key"))
    }

    /// Opens the run these arguments name, and a thread pool.
    pub fn open(&self) -> anyhow::Result<(TrainedRun, rayon::ThreadPool)> {
        let run = open(
            &self.output_directory,
            &self.checkpoint_file,
            &self.refinement_star_file,
            &self.initial_model,
            &self.project_dir,
        )?;
        Ok((run, pool(self.n_threads)?))
    }
}

/// The options RELION 5 adds to every DynaMight command after training.
#[derive(clap::Args, Clone, Debug)]
pub struct RelionArgs {
    /// Accepted for RELION 5's command line; images are read from their stacks.
    #[arg(long)]
    pub preload_images: bool,
    /// GPU (this build runs on the CPU).
    #[arg(long)]
    pub gpu_id: Option<String>,
    /// RELION pipeline control directory (RELION_JOB_EXIT_SUCCESS / _FAILURE).
    #[arg(long, value_name = "DIR")]
    pub pipeline_control: Option<PathBuf>,
}

impl RelionArgs {
    /// Runs `command`, noting a `--gpu-id` this build cannot use, and reports the result to
    /// RELION's pipeline control directory.
    pub fn run(&self, command: impl FnOnce() -> anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
        if let Some(gpu) = &self.gpu_id {
            eprintln!("note: --gpu-id {gpu}: this cryomotion was built without CUDA; it runs on the CPU");
        }
        report_to_pipeline(&self.pipeline_control, command())
    }
}

/// A trained run, opened.
pub struct TrainedRun {
    pub table: ParticleTable,
    pub model: TrainedModel,
    pub map: Map,
    pub project_dir: Option<PathBuf>,
}

/// A STAR or cryoSPARC `.cs` particle file.
pub fn read_table(path: &Path) -> anyhow::Result<ParticleTable> {
    if path.extension().is_some_and(|e| e == "cs") {
        Ok(read_particles_cs(path)?)
    } else {
        Ok(read_particles_star(path)?)
    }
}

fn recorded(
    given: &Option<PathBuf>,
    recorded: &Option<PathBuf>,
    what: &str,
    option: &str,
) -> anyhow::Result<PathBuf> {
    match (given, recorded) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(p)) if p.exists() => Ok(p.clone()),
        (None, Some(p)) => {
            bail!("the {what} recorded in the checkpoint, {}, is gone: give {option}", p.display())
        }
        (None, None) => bail!("the checkpoint does not record the {what}: give {option}"),
    }
}

/// Opens the run in `out` from `checkpoint` (default: its final checkpoint); `star`, `map` and
/// `project_dir` override what the checkpoint records.
pub fn open(
    out: &Path,
    checkpoint: &Option<PathBuf>,
    star: &Option<PathBuf>,
    map: &Option<PathBuf>,
    project_dir: &Option<PathBuf>,
) -> anyhow::Result<TrainedRun> {
    let checkpoint = checkpoint.clone().unwrap_or_else(|| Layout::new(out).final_checkpoint());
    if !checkpoint.exists() {
        bail!(
            "{}: no checkpoint; run optimize-deformations into {} first, or give --checkpoint-file",
            checkpoint.display(),
            out.display()
        );
    }
    let inputs = TrainedModel::recorded_inputs(&Tensors::read(&checkpoint)?);
    let star = recorded(star, &inputs.star, "particle file", "--refinement-star-file")?;
    let map_path = recorded(map, &inputs.initial_model, "consensus map", "--initial-model")?;
    let mut table = read_table(&star)?;
    let model = TrainedModel::read(&checkpoint, table_fingerprint(&table), table.len())
        .with_context(|| format!("checking {} against {}", checkpoint.display(), star.display()))?;
    model.apply_shifts(&mut table);
    let map =
        read_map(&map_path).with_context(|| format!("reading the consensus map {}", map_path.display()))?;
    Ok(TrainedRun { table, model, map, project_dir: project_dir.clone().or(inputs.project_dir) })
}

/// A rayon pool of `threads` (default: all cores).
pub fn pool(threads: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |t| t.get()));
    Ok(rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build()?)
}

/// With RELION's `--pipeline-control DIR`, marks the job's end (success or failure) there and
/// passes the result on.
fn report_to_pipeline(dir: &Option<PathBuf>, result: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    if let Some(dir) = dir {
        let name = if result.is_ok() { "RELION_JOB_EXIT_SUCCESS" } else { "RELION_JOB_EXIT_FAILURE" };
        std::fs::File::create(dir.join(name))
            .with_context(|| format!("writing {}", dir.join(name).display()))?;
    }
    result
}
