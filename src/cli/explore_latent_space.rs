//! `cryomotion explore-latent-space`: the motion analysis of a trained run, as files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::ValueEnum;

use cryomotion::io::images::{ImagePaths, ParticleImages};
use cryomotion::ops::explore::{ExploreOptions, explore};
use cryomotion::training::{ImageSource, LatentRefinement, Loader, ParticleSet};

use super::trained_run;

/// Embeddings of the latent space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Embedding {
    /// Principal components only.
    Pca,
    /// Principal components and UMAP.
    Umap,
}

/// Explore the latent space of an optimize-deformations run, as files.
///
/// Embeddings and plots, k-means cluster maps and particle subsets, trajectories along the principal components,
/// per-Gaussian activity, the half models compared, and maps at chosen latents. Everything
/// goes to OUT/explore/.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  cryomotion explore-latent-space OUT
  cryomotion explore-latent-space OUT --half-set 0 --embedding umap --n-clusters 8
  cryomotion explore-latent-space OUT --latents picked.txt

Open a trajectory in ChimeraX as a volume series:
  open OUT/explore/half1/trajectory_pc1/map_*.mrc vseries true")]
pub struct Args {
    #[command(flatten)]
    run: trained_run::RunArgs,
    #[command(flatten)]
    relion: trained_run::RelionArgs,
    /// Half set to explore: 1, 2, or 0 for both and their comparison.
    #[arg(long, default_value_t = 1)]
    half_set: u8,
    /// k-means clusters per half set.
    #[arg(long, default_value_t = 6)]
    n_clusters: usize,
    /// Embedding: PCA is always written; umap adds a UMAP embedding.
    #[arg(long, value_enum, default_value_t = Embedding::Pca)]
    embedding: Embedding,
    /// Maps per trajectory (5th to 95th percentile of each principal component).
    #[arg(long, default_value_t = 10)]
    trajectory_steps: usize,
    /// Principal components with a trajectory.
    #[arg(long, default_value_t = 2)]
    trajectory_components: usize,
    /// Latent vectors (one per line, or a .npy array), or particle numbers (1-based STAR rows,
    /// one per line): a map and point cloud for each.
    #[arg(long, value_name = "FILE")]
    latents: Option<PathBuf>,
    /// Particles whose deformations colour the plots (a seeded sample).
    #[arg(long, default_value_t = 5000)]
    max_points: usize,
    /// Seed of samples, clusters and UMAP.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    args.relion.run(|| explore_run(args))
}

fn explore_run(args: &Args) -> anyhow::Result<ExitCode> {
    let (run, pool) = args.run.open()?;
    let (table, model, map) = (&run.table, &run.model, &run.map);
    let options = ExploreOptions {
        half_set: args.half_set,
        n_clusters: args.n_clusters,
        umap: args.embedding == Embedding::Umap,
        trajectory_steps: args.trajectory_steps,
        trajectory_components: args.trajectory_components,
        max_points: args.max_points.max(1),
        latents: args.latents.clone(),
        seed: args.seed,
    };
    let dir = args.run.output_directory.join("explore");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let project_dir = run.project_dir.clone();
    let mut loader: Option<(ParticleSet, Loader)> = None;
    let mut encode = |half: usize, particles: &[usize]| -> cryomotion::Result<Vec<f32>> {
        if loader.is_none() {
            let paths = ImagePaths { project_dir: project_dir.clone(), ..Default::default() };
            let images = ParticleImages::open(table, &paths)?;
            let image_box = images.shape()[0];
            let set =
                ParticleSet::new(table, image_box, model.box_size, model.particle_halves.clone(), 0.0, 0, 0)?;
            let l = Loader::new(&set, ImageSource::Disk(images), image_box, model.data_scale)?;
            loader = Some((set, l));
        }
        let (set, l) = loader.as_mut().expect("opened above");
        model.encode(half, set, l, particles, LatentRefinement::default(), &mut |_| {})
    };
    let summary = pool.install(|| {
        explore(&dir, model, table, map, &options, &mut encode, &mut |line| eprintln!("{line}"))
    })?;
    for (half, particles, pc1, sizes) in &summary.halves {
        println!(
            "half set {half}: {particles} particles; PC1 holds {:.0}% of the latent variance; clusters of {sizes:?}",
            100.0 * pc1
        );
    }
    if let Some((difference, displacement)) = summary.half_difference {
        println!(
            "half models on the same particles: median RMS difference {difference:.2} Å for a median RMS \
             displacement of {displacement:.2} Å (explore/half_comparison.*)"
        );
    }
    println!("{} files under {}", summary.files.len(), dir.display());
    Ok(ExitCode::SUCCESS)
}
