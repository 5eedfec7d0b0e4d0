//! `cryomotion simulate`: a particle dataset with known ground truth.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use cryomotion::fft::fourier_resize_volume;
use cryomotion::io::mrc::read_map;
use cryomotion::ops::simulate::{SimulateOptions, output_paths, simulate};

/// Simulate particles from a map: projections at uniformly random poses, CTF, white noise.
///
/// SNR is defined as RELION and CryoBench do: the variance of the noise-free, CTF-modulated
/// projections over the whole box, averaged over all particles, divided by the variance of the
/// white Gaussian noise. The same --seed gives the same dataset on any number of threads.
#[derive(clap::Args)]
#[command(after_help = "Outputs: DIR/particles.mrcs, DIR/particles.star (RELION 3.1, true poses, CTF,
rlnRandomSubset), DIR/truth.csv (true pose, origin, defocus and half set per particle).

Example:
  cryomotion simulate --map consensus.mrc --n-particles 10000 --snr 0.05 --o Simulated/")]
pub struct Args {
    /// Map to project (its header gives the pixel size unless --pixel-size is set).
    #[arg(long)]
    map: PathBuf,

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

    /// Resample the map to this box first (Fourier cropping or padding, same field of view:
    /// the pixel size scales by old box / new box).
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
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let map = read_map(&args.map)?;
    let [nx, ny, nz] = map.volume.shape;
    if nx != ny || nx != nz {
        bail!("{}: the map must be cubic, it is {nx}×{ny}×{nz}", args.map.display());
    }
    if args.defocus[0] > args.defocus[1] {
        bail!("--defocus: the smallest defocus comes first");
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
    let nx = volume.shape[0];
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
    };
    let sigma = simulate(&volume, &options, &args.output)?;
    for path in output_paths(&args.output) {
        println!("wrote {}", path.display());
    }
    println!("{} particles, box {nx}, {pixel_size} Å/px, noise σ = {sigma:.4}", args.n_particles);
    Ok(ExitCode::SUCCESS)
}
