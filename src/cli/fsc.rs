//! `cryomotion fsc`: Fourier shell correlation between two maps.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use cryomotion::array::Volume;
use cryomotion::io::mrc::read_map;
use cryomotion::ops::reconstruct::fsc_star;
use cryomotion::reconstruction::{fsc, resolution_at};

/// FSC between two maps of the same box (half maps, or a map and a reference).
#[derive(clap::Args)]
#[command(after_help = "Example:
  cryomotion fsc Reconstruct/half1.mrc Reconstruct/half2.mrc --mask mask.mrc --o fsc.star")]
pub struct Args {
    /// First map.
    map1: PathBuf,
    /// Second map.
    map2: PathBuf,
    /// Multiply both maps by this mask first.
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
    let (mut va, mut vb) = (a.volume, b.volume);
    if let Some(mask) = &args.mask {
        let m = read_map(mask)?.volume;
        if m.shape != va.shape {
            bail!("{}: the mask is {:?}, the maps {:?}", mask.display(), m.shape, va.shape);
        }
        let apply = |v: &mut Volume| v.data.iter_mut().zip(&m.data).for_each(|(x, w)| *x *= w);
        apply(&mut va);
        apply(&mut vb);
    }
    let pixel_size = a.voxel_size[0] as f64;
    let curve = fsc(&va, &vb);
    println!("shell  resolution (Å)  FSC");
    for (s, f) in curve.iter().enumerate().skip(1) {
        println!("{s:5}  {:14.2}  {f:6.3}", n as f64 * pixel_size / s as f64);
    }
    let (r143, r05) =
        (resolution_at(&curve, 0.143, n, pixel_size), resolution_at(&curve, 0.5, n, pixel_size));
    println!("resolution at FSC 0.143: {r143:.2} Å; at 0.5: {r05:.2} Å");
    if let Some(path) = &args.output {
        fsc_star(&curve, n, pixel_size, r143)?.write(path)?;
        println!("wrote {}", path.display());
        let png = path.with_extension("png");
        let title = format!("FSC: {r143:.2} Å at 0.143");
        cryomotion::plot::fsc_chart(&title, &[("map 1 vs map 2", &curve)], n, pixel_size).write_png(&png)?;
        println!("wrote {}", png.display());
    }
    Ok(ExitCode::SUCCESS)
}
