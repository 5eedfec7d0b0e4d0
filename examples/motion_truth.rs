//! How close the learnt deformations of an `optimize-deformations` run come to the true motion
//! of a `cryomotion simulate --model M --anm-modes K` dataset (used by bench/deformations.sh).
//!
//! usage: cargo run --release --example motion_truth -- OUT SIM MODEL.pdb K [ANM_CUTOFF=15]
//!
//! Prints per half, for the Gaussians in the moving domains (true RMS displacement above the
//! median) and for all: the RMS true displacement (the undeformed consensus's error), the RMS
//! error of the learnt displacement, and their ratio; and the error of the per-particle motion
//! alone (each Gaussian's error common to all particles removed); and how far the tiles of
//! deformable backprojection put the moving atoms back from their consensus positions. The
//! error is given twice: each Gaussian counted alike, and weighted by its amplitude (the
//! density it carries; a Gaussian whose amplitude has gone to zero is invisible to the images,
//! so the data does not tell where the decoder moves it).

use std::path::PathBuf;

use anyhow::{Context, bail};
use cryomotion::io::atoms::read_atoms;
use cryomotion::io::mrc::MrcReader;
use cryomotion::io::relion::read_particles_star;
use cryomotion::model::SILENT_AMPLITUDE;
use cryomotion::ops::deformable_backprojection::{tile_motions, tiling};
use cryomotion::ops::ground_truth::{TrueMotion, inverse_errors, motion_errors};
use cryomotion::ops::optimize_deformations::Layout;
use cryomotion::ops::simulate::{AtomModes, Source};
use cryomotion::training::{TrainedModel, table_fingerprint};

const PARTICLES_PER_HALF: usize = 1000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        bail!("usage: motion_truth OUT SIM MODEL.pdb K [ANM_CUTOFF=15]");
    }
    let (out, sim, model) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let modes: usize = args[3].parse().context("K: number of ANM modes")?;
    let cutoff: f64 = args.get(4).map_or(Ok(15.0), |c| c.parse()).context("ANM cutoff")?;

    let table = read_particles_star(sim.join("particles.star"))?;
    let checkpoint = Layout::new(&out).final_checkpoint();
    let trained = TrainedModel::read(&checkpoint, table_fingerprint(&table), table.len())?;
    let atoms = read_atoms(&model)?.models.remove(0);
    let motion = AtomModes::anm(&atoms, modes, cutoff, 1.0);
    let source = Source::Atoms { frames: vec![atoms], modes: Some(motion), resolution: 3.0, box_size: 0 };
    let truth = TrueMotion::new(source, &sim.join("truth.csv"))?;
    if truth.len() != trained.len() {
        bail!("{} particles in truth.csv but {} in the run", truth.len(), trained.len());
    }
    let pixel = table.optics_groups[0].pixel_size;
    let n = MrcReader::open(sim.join("particles.mrcs"))?.header().dims[0];
    let tiles = tiling(&trained.reference.positions, 8, n, pixel, 0);
    let motions = tile_motions(&trained, &tiles, &|_| {});
    for half in 0..2 {
        let particles: Vec<usize> =
            (0..trained.len()).filter(|&p| trained.half_index(p) == half).take(PARTICLES_PER_HALF).collect();
        let e = motion_errors(&trained, &truth, half, &particles)?;
        println!(
            "half {}: moving domains ({} Gaussians): true motion {:.2} Å RMS, learnt error {:.2} Å (ratio {:.2}), \
             of the per-particle motion {:.2} Å (ratio {:.2}); learnt motion {:.2} Å RMS, cosine with the true {:.2}; affine read-out from the latents {:.2} Å (ratio {:.2}); all: {:.2} Å vs {:.2} Å (ratio {:.2}), per-particle {:.2} Å; median Gaussian {:.2} Å; {} particles",
            half + 1,
            e.moving,
            e.undeformed_moving,
            e.deformed_moving,
            e.deformed_moving / e.undeformed_moving,
            e.varying_moving,
            e.varying_moving / e.undeformed_moving,
            e.learnt_moving,
            e.cosine_moving,
            e.readout_moving,
            e.readout_moving / e.undeformed_moving,
            e.undeformed_all,
            e.deformed_all,
            e.deformed_all / e.undeformed_all,
            e.varying_all,
            e.median_gaussian_error,
            e.particles
        );
        println!(
            "half {}: moving domains weighted by amplitude (density): true motion {:.2} Å RMS, learnt error {:.2} Å (density-weighted ratio {:.3}); {} Gaussians without density (amplitude below {}× the median)",
            half + 1,
            e.weighted_undeformed_moving,
            e.weighted_deformed_moving,
            e.weighted_deformed_moving / e.weighted_undeformed_moving,
            e.dead,
            SILENT_AMPLITUDE
        );
        let e = inverse_errors(&trained, &truth, &tiles, &motions, pixel, half, &particles)?;
        println!(
            "half {}: atoms of the moving domains put back by the 8 tiles' inverse transforms: {:.2} Å from \
             their consensus positions (forward model's error there {:.2} Å; left uncorrected {:.2} Å)",
            half + 1,
            e.recovered,
            e.forward,
            e.uncorrected
        );
    }
    Ok(())
}
