//! `cryomotion fsc`: Fourier shell correlation between two maps.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use cryomotion::io::mrc::read_map;
use cryomotion::ops::reconstruct::fsc_star;
use cryomotion::reconstruction::{fsc, masked_fsc, resolution_at};

/// FSC between two maps of the same box (half maps, or a map and a reference).
#[derive(clap::Args)]
#[command(after_help = "Example:
  cryomotion fsc Reconstruct/half1.mrc Reconstruct/half2.mrc --mask mask.mrc --o fsc.star")]
pub struct Args {
    /// First map.
    map1: PathBuf,
    /// Second map.
    map2: PathBuf,
    /// Mask: report the masked FSC corrected by phase randomisation (as RELION's postprocess).
    #[arg(long)]
    mask: Option<PathBuf>,
    /// Write the curve as a RELION-style STAR table, and a plot beside it (FILE with .png).
    #[arg(long = "o", value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (a, b) = (read_map(&args.map1)?, read_map(&args.map2)?);
    if a.volume.shape != b.volume.shape {
        bail!(
            "{} is {:?} but {} is {:?}",
            args.map1.display(),
            a.volume.shape,
            args.map2.display(),
            b.volume.shape
        );
    }
    let n = a.volume.shape[0];
    if a.volume.shape.iter().any(|&s| s != n) {
        bail!("{}: the maps must be cubic", args.map1.display());
    }
    let pixel_size = a.voxel_size[0] as f64;
    let unmasked = fsc(&a.volume, &b.volume);
    let masked = match &args.mask {
        Some(mask) => {
            let m = read_map(mask)?.volume;
            if m.shape != a.volume.shape {
                bail!("{}: the mask is {:?}, the maps {:?}", mask.display(), m.shape, a.volume.shape);
            }
            Some(masked_fsc(&a.volume, &b.volume, &m, 0))
        }
        None => None,
    };
    let curve = masked.as_ref().map_or(&unmasked, |m| &m.corrected);
    println!("shell  resolution (Å)  FSC{}", if masked.is_some() { " (masked, corrected)" } else { "" });
    for (s, f) in curve.iter().enumerate().skip(1) {
        println!("{s:5}  {:14.2}  {f:6.3}", n as f64 * pixel_size / s as f64);
    }
    let (r143, r05) = (resolution_at(curve, 0.143, n, pixel_size), resolution_at(curve, 0.5, n, pixel_size));
    println!("resolution at FSC 0.143: {r143:.2} Å; at 0.5: {r05:.2} Å");
    if let Some(path) = &args.output {
        fsc_star(&unmasked, masked.as_ref(), n, pixel_size, r143)?.write(path)?;
        println!("wrote {}", path.display());
        let png = path.with_extension("png");
        let title = format!("FSC: {r143:.2} Å at 0.143");
        let curves: Vec<(&str, &[f64])> = match &masked {
            Some(m) => vec![("corrected", &m.corrected), ("unmasked", &m.unmasked), ("masked", &m.masked)],
            None => vec![("map 1 vs map 2", &unmasked)],
        };
        cryomotion::plot::fsc_chart(&title, &curves, n, pixel_size).write_png(&png)?;
        println!("wrote {}", png.display());
    }
    Ok(ExitCode::SUCCESS)
}
