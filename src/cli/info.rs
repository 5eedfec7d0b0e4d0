//! `cryomotion info`: what a file holds.

use std::path::PathBuf;
use std::process::ExitCode;

/// Show what files hold: box, pixel size, images, particles, optics groups, columns, ranges.
///
/// Reads MRC maps and stacks (.mrc .mrcs .map), STAR files, cryoSPARC .cs and NumPy .npy files,
/// and PDB/mmCIF models. A file that cannot be read is reported and the others still shown.
///
/// Example: cryomotion info particles.star consensus.mrc
#[derive(clap::Args)]
#[command(after_help = "Example:\n  cryomotion info examples/data/particles.star examples/data/map.mrc")]
pub struct Args {
    /// Files to describe.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut failed = 0;
    for (k, path) in args.files.iter().enumerate() {
        if k > 0 {
            println!();
        }
        match cryomotion::inspect::describe(path) {
            Ok(report) => print!("{report}"),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
