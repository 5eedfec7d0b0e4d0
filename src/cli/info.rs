//! `cryomotion info`: what a file holds.

use std::path::PathBuf;
use std::process::ExitCode;

use cryomotion::io::images::ImagePaths;

/// Show what files hold: box, pixel size, images, particles, optics groups, columns, ranges.
///
/// Reads MRC maps and stacks (.mrc .mrcs .map), STAR files, cryoSPARC .cs and NumPy .npy files,
/// cryoDRGN pickles, PDB/mmCIF models and text tables. For particle files it checks that every
/// image stack is found. A file that cannot be read is reported and the others still shown.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  cryomotion info examples/data/trpv1_particles.star examples/data/trpv1_map.mrc
  cryomotion info Refine3D/job010/run_data.star --project-dir /data/my_project")]
pub struct Args {
    /// Files to describe.
    #[arg(required = true)]
    files: Vec<PathBuf>,

    /// Directory that relative image paths in STAR and .cs files are relative to (RELION's project
    /// directory). Default: the metadata file's directory, then each of its parents.
    #[arg(long, value_name = "DIR")]
    project_dir: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let images = ImagePaths { project_dir: args.project_dir.clone(), ..Default::default() };
    let mut failed = 0;
    for (k, path) in args.files.iter().enumerate() {
        if k > 0 {
            println!();
        }
        match cryomotion::inspect::describe(path, &images) {
            Ok(report) => print!("{report}"),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
