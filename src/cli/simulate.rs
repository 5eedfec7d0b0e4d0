//! `cryomotion simulate`: a particle dataset with known ground truth.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use cryomotion::fft::fourier_resize_volume;
use cryomotion::io::atoms::{Atom, read_atoms};
use cryomotion::io::mrc::read_map;
use cryomotion::io::relion::read_particles_star;
use cryomotion::ops::simulate::{
    AtomModes, SimulateOptions, Source, conformation_maps, match_atoms, output_paths, simulate,
};

/// Simulate particles from a map or from atomic models: projections at uniformly random poses,
/// CTF, white noise.
///
/// From models, each particle's conformation is drawn uniformly along a path: the frames of a
/// multi-model PDB/mmCIF (your own MD or morph, frames in order), or a linear morph between two
/// models given as two --model files (atoms matched by chain, residue and name). Atoms become
/// Gaussians weighted by their electrons (width 0.225 × --atom-resolution, as Chimera's molmap).
///
/// SNR is defined as RELION and CryoBench do: the variance of the noise-free, CTF-modulated
/// projections over the whole box, averaged over all particles, divided by the variance of the
/// white Gaussian noise. The same --seed gives the same dataset on any number of threads.
#[derive(clap::Args)]
#[command(after_help = "Outputs: DIR/particles.mrcs, DIR/particles.star (RELION 3.1, true poses, CTF,
rlnRandomSubset), DIR/truth.csv (true pose, origin, defocus and half set per particle).

Examples:
  cryomotion simulate --map consensus.mrc --n-particles 10000 --snr 0.05 --o Simulated/
  cryomotion simulate --model 1ake.pdb --model 4ake.pdb --box 96 --pixel-size 1.5 --o Morph/")]
pub struct Args {
    /// Map to project (its header gives the pixel size unless --pixel-size is set).
    #[arg(long, required_unless_present = "model", conflicts_with = "model")]
    map: Option<PathBuf>,

    /// Atomic model(s): one multi-model file (frames of a path) or two files (a linear morph).
    #[arg(long, num_args = 1, action = clap::ArgAction::Append)]
    model: Vec<PathBuf>,

    /// Resolution in Å of the atomic density (default: 3 × pixel size).
    #[arg(long)]
    atom_resolution: Option<f64>,

    /// Move one model along this many slowest elastic-network (ANM) normal modes, with an
    /// independent amplitude per mode and particle.
    #[arg(long, value_name = "K")]
    anm_modes: Option<usize>,

    /// Largest mode amplitude in Å (RMS displacement of the Cα); drawn uniformly in ±this.
    #[arg(long, default_value_t = 3.0)]
    anm_amplitude: f64,

    /// ANM spring cutoff in Å (ProDy's default 15).
    #[arg(long, default_value_t = 15.0)]
    anm_cutoff: f64,

    /// Output directory.
    #[arg(long = "o", value_name = "DIR")]
    output: PathBuf,

    /// Number of particles.
    #[arg(long, default_value_t = 1000)]
    n_particles: usize,

    /// Signal-to-noise ratio; 0 for noise-free images.
    #[arg(long, default_value_t = 0.1)]
    snr: f64,

    /// Pixel size in Å of the map (default: from the map header).
    #[arg(long)]
    pixel_size: Option<f64>,

    /// Box size: for a map, resample it to this box first (Fourier cropping or padding, same
    /// field of view: the pixel size scales by old box / new box); required for models.
    #[arg(long = "box", value_name = "PIXELS")]
    box_size: Option<usize>,

    /// Smallest and largest defocus in Å.
    #[arg(long, num_args = 2, default_values_t = [10000.0, 25000.0])]
    defocus: Vec<f64>,

    /// Largest astigmatism |ΔU − ΔV| in Å.
    #[arg(long, default_value_t = 500.0)]
    astigmatism: f64,

    /// Acceleration voltage in kV.
    #[arg(long, default_value_t = 300.0)]
    voltage: f64,

    /// Spherical aberration in mm.
    #[arg(long, default_value_t = 2.7)]
    cs: f64,

    /// Amplitude contrast.
    #[arg(long, default_value_t = 0.1)]
    amplitude_contrast: f64,

    /// Do not apply a CTF.
    #[arg(long)]
    no_ctf: bool,

    /// Standard deviation of particle offsets in Å.
    #[arg(long, default_value_t = 0.0)]
    shift_sigma: f64,

    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Take the poses (rot, tilt, psi) from this particle STAR file, in turn, instead of
    /// uniformly random ones.
    #[arg(long, value_name = "STAR")]
    poses_from: Option<PathBuf>,

    /// Rotation error (degrees, standard deviation) in the written STAR poses; truth.csv keeps
    /// the exact poses.
    #[arg(long, default_value_t = 0.0)]
    pose_error: f64,

    /// Origin error (Å per axis, standard deviation) in the written STAR origins.
    #[arg(long, default_value_t = 0.0)]
    shift_error: f64,

    /// Write every atom's true displacement per particle to DIR/displacements.npy (float32,
    /// particles × atoms × 3, Å).
    #[arg(long)]
    write_displacements: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if args.defocus[0] > args.defocus[1] {
        bail!("--defocus: the smallest defocus comes first");
    }
    let (source, pixel_size) = match &args.map {
        Some(path) => map_source(args, path)?,
        None => model_source(args)?,
    };
    let options = SimulateOptions {
        count: args.n_particles,
        pixel_size,
        snr: (args.snr > 0.0).then_some(args.snr),
        defocus_range: [args.defocus[0], args.defocus[1]],
        astigmatism: args.astigmatism,
        voltage_kv: args.voltage,
        spherical_aberration_mm: args.cs,
        amplitude_contrast: args.amplitude_contrast,
        ctf: !args.no_ctf,
        shift_sigma_angstrom: args.shift_sigma,
        seed: args.seed,
        poses_from: match &args.poses_from {
            Some(path) => {
                let table = read_particles_star(path)?;
                if !table.has_poses {
                    bail!("{}: no poses (rlnAngleRot, rlnAngleTilt) to take", path.display());
                }
                Some(table.particles.iter().map(|p| p.euler_deg).collect())
            }
            None => None,
        },
        pose_error_deg: args.pose_error,
        shift_error_angstrom: args.shift_error,
        write_displacements: args.write_displacements,
    };
    if args.write_displacements && args.map.is_some() {
        bail!("--write-displacements needs atomic models (--model)");
    }
    let sigma = simulate(&source, &options, &args.output)?;
    for path in output_paths(&args.output) {
        println!("wrote {}", path.display());
    }
    let n = match &source {
        Source::Map(v) => v.shape[0],
        Source::Atoms { box_size, .. } => *box_size,
    };
    for (name, _) in conformation_maps(&source) {
        println!("wrote {}", args.output.join(format!("{name}.mrc")).display());
    }
    println!("{} particles, box {n}, {pixel_size} Å/px, noise σ = {sigma:.4}", args.n_particles);
    Ok(ExitCode::SUCCESS)
}

fn map_source(args: &Args, path: &std::path::Path) -> anyhow::Result<(Source, f64)> {
    let map = read_map(path)?;
    let [nx, ny, nz] = map.volume.shape;
    if nx != ny || nx != nz {
        bail!("{}: the map must be cubic, it is {nx}×{ny}×{nz}", path.display());
    }
    let mut pixel_size = args.pixel_size.unwrap_or(map.voxel_size[0] as f64);
    let mut volume = map.volume;
    if let Some(m) = args.box_size {
        if m < 8 {
            bail!("--box {m}: too small");
        }
        volume = fourier_resize_volume(&volume, m);
        pixel_size *= nx as f64 / m as f64;
    }
    Ok((Source::Map(volume), pixel_size))
}

fn model_source(args: &Args) -> anyhow::Result<(Source, f64)> {
    let (Some(box_size), Some(pixel_size)) = (args.box_size, args.pixel_size) else {
        bail!("--model needs --box and --pixel-size");
    };
    let resolution = args.atom_resolution.unwrap_or(3.0 * pixel_size);
    if let Some(k) = args.anm_modes {
        let [one] = args.model.as_slice() else { bail!("--anm-modes moves one model: give one --model") };
        let atoms = read_atoms(one)?.models.remove(0);
        let modes = AtomModes::anm(&atoms, k, args.anm_cutoff, args.anm_amplitude);
        if modes.displacements.len() < k {
            bail!(
                "{}: only {} normal modes for {} atoms",
                one.display(),
                modes.displacements.len(),
                atoms.len()
            );
        }
        let frames = vec![atoms];
        return Ok((Source::Atoms { frames, modes: Some(modes), resolution, box_size }, pixel_size));
    }
    let models: Vec<Vec<Atom>> = match args.model.as_slice() {
        [one] => read_atoms(one)?.models,
        [a, b] => {
            eprintln!(
                "warning: a linear Cartesian morph between two models distorts domains mid-path \
                 (bonds stretch, rigid domains shrink); for realistic paths give a multi-model file"
            );
            vec![read_atoms(a)?.models.remove(0), read_atoms(b)?.models.remove(0)]
        }
        _ => bail!("give one multi-model file or two models with --model"),
    };
    if models.len() < 2 {
        bail!("{}: one model only: give a multi-model file or a second --model", args.model[0].display());
    }
    let frames = match_atoms(&models);
    if frames[0].is_empty() {
        bail!("the models share no atoms (matched by chain, residue number and atom name)");
    }
    eprintln!("{} frames of {} matched atoms", frames.len(), frames[0].len());
    Ok((Source::Atoms { frames, modes: None, resolution, box_size }, pixel_size))
}
