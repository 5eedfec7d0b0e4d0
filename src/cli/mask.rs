//! `cryomotion mask`: a soft mask from a map (like relion_mask_create).

use std::path::PathBuf;
use std::process::ExitCode;

use cryomotion::io::mrc::{Mode, read_map, write_volume};
use cryomotion::reconstruction::{low_pass_angstrom, threshold_mask};

/// Make a soft mask: threshold a (low-passed) map, extend the binary mask, add a soft edge.
#[derive(clap::Args)]
#[command(after_help = "Example:
  cryomotion mask --map Reconstruct/map.mrc --threshold 0.02 --lowpass 15 --extend 3 --soft-edge 6 --o mask.mrc")]
pub struct Args {
    /// Map to threshold.
    #[arg(long)]
    map: PathBuf,
    /// Density threshold (in the map's units, after the low-pass filter).
    #[arg(long)]
    threshold: f32,
    /// Low-pass filter the map to this resolution in Å first (0: off).
    #[arg(long, default_value_t = 15.0)]
    lowpass: f64,
    /// Extend the binary mask by this many pixels.
    #[arg(long, default_value_t = 3.0)]
    extend: f64,
    /// Width of the raised-cosine edge in pixels.
    #[arg(long, default_value_t = 6.0)]
    soft_edge: f64,
    /// Output mask.
    #[arg(long = "o", value_name = "FILE")]
    output: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let map = read_map(&args.map)?;
    let pixel_size = map.voxel_size[0] as f64;
    let volume = if args.lowpass > 0.0 {
        low_pass_angstrom(&map.volume, pixel_size, args.lowpass)
    } else {
        map.volume
    };
    let mask = threshold_mask(&volume, args.threshold, args.extend, args.soft_edge);
    let inside = mask.data.iter().filter(|&&v| v >= 0.5).count() as f64 / mask.data.len() as f64;
    write_volume(&args.output, &mask, pixel_size as f32, map.origin, Mode::Float32)?;
    println!("wrote {} ({:.1}% of the box inside)", args.output.display(), 100.0 * inside);
    Ok(ExitCode::SUCCESS)
}
