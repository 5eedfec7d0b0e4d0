//! Comparisons with RELION 3.1's own programs (`apt-get install relion`; `.ci/run` installs it).

use std::path::Path;
use std::process::Command;

use cryomotion::geometry::euler_to_matrix;
use cryomotion::imaging::{Ctf, FourierProjector, ImageRenderer};
use cryomotion::io::mrc::{MrcReader, read_map};
use cryomotion::io::relion::read_particles_star;
use cryomotion::rng::Rng;

use crate::imaging::correlation;
use crate::util::shared;

/// Runs a RELION program; fails clearly if RELION is not installed.
pub fn relion(program: &str, args: &[&str], dir: &Path) {
    let out = Command::new(program).args(args).current_dir(dir).output().unwrap_or_else(|e| {
        panic!(
            "{program} could not run ({e}): install RELION 3.1 with `apt-get install relion` (.ci/run does)"
        )
    });
    assert!(out.status.success(), "{program} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A RELION 3.1 particle STAR file with random poses, origins and astigmatic defoci.
fn random_ctf_star(path: &Path, count: usize, pixel: f64, box_size: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut text = format!(
        "\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnOpticsGroupName #2\n_rlnVoltage #3\n\
         _rlnSphericalAberration #4\n_rlnAmplitudeContrast #5\n_rlnImagePixelSize #6\n_rlnImageSize #7\n\
         _rlnImageDimensionality #8\n1 optics1 300 2.7 0.1 {pixel} {box_size} 2\n\n# version 30001\n\n\
         data_particles\n\nloop_\n_rlnAngleRot #1\n_rlnAngleTilt #2\n_rlnAnglePsi #3\n_rlnOriginXAngst #4\n\
         _rlnOriginYAngst #5\n_rlnDefocusU #6\n_rlnDefocusV #7\n_rlnDefocusAngle #8\n_rlnPhaseShift #9\n\
         _rlnCtfBfactor #10\n_rlnOpticsGroup #11\n_rlnImageName #12\n"
    );
    for i in 0..count {
        let [rot, tilt, psi] = rng.uniform_euler();
        let u = rng.range(5000.0, 30000.0);
        let v = u - rng.range(0.0, 2000.0);
        text += &format!(
            "{rot:.4} {tilt:.4} {psi:.4} {:.3} {:.3} {u:.1} {v:.1} {:.2} {:.1} {:.1} 1 {}@x.mrcs\n",
            rng.range(-8.0, 8.0),
            rng.range(-8.0, 8.0),
            rng.range(0.0, 180.0),
            if i % 4 == 0 { rng.range(0.0, 90.0) } else { 0.0 },
            if i % 3 == 0 { rng.range(0.0, 100.0) } else { 0.0 },
            i + 1
        );
    }
    std::fs::write(path, text).unwrap();
}

/// relion_project --ctf and our projection with RELION's CTF agree image by image.
#[test]
fn ctf_projections_match_relion_project() {
    let dir = tempfile::tempdir().unwrap();
    let map_path = shared("prody_adk/1ake.mrc");
    let (pixel, n) = (2.0, 64);
    let star = dir.path().join("poses.star");
    random_ctf_star(&star, 24, pixel, n, 2026);
    relion(
        "relion_project",
        &["--i", map_path.to_str().unwrap(), "--o", "proj", "--ang", "poses.star", "--ctf", "--angpix", "2"],
        dir.path(),
    );
    let table = read_particles_star(&star).unwrap();
    let theirs = MrcReader::open(dir.path().join("proj.mrcs")).unwrap();
    assert_eq!(theirs.image_count(), 24);
    let projector = FourierProjector::new(&read_map(&map_path).unwrap().volume, 2);
    let mut renderer = ImageRenderer::new(n);
    let (mut ours, mut image, mut ctf) = (vec![0.0; n * n], vec![0.0; n * n], vec![0.0; (n / 2 + 1) * n]);
    let mut scales = Vec::new();
    for (i, p) in table.particles.iter().enumerate() {
        Ctf::new(table.optics_of(i), &p.ctf).fill_half_plane(n, pixel, false, &mut ctf);
        let [rot, tilt, psi] = p.euler_deg;
        let origin = [p.origin_angstrom[0] / pixel, p.origin_angstrom[1] / pixel];
        renderer.render(&projector, &euler_to_matrix(rot, tilt, psi), origin, Some(&ctf), &mut ours);
        theirs.read_image(i, &mut image).unwrap();
        let cc = correlation(&ours, &image);
        assert!(cc >= 0.99, "image {}: correlation {cc:.4}", i + 1);
        let scale = ours.iter().zip(&image).map(|(a, b)| (a * b) as f64).sum::<f64>()
            / ours.iter().map(|a| (a * a) as f64).sum::<f64>();
        scales.push(scale);
    }
    // same normalisation as RELION: a projection is the sum of voxels along each ray
    for s in &scales {
        assert!((s - 1.0).abs() < 0.01, "per-image scales RELION/ours {scales:?}");
    }
}

/// On the same simulated particles, relion_reconstruct --ctf and our reconstruction (no Wiener
/// term, as relion_reconstruct without --fsc) agree shell by shell out to 0.8 × Nyquist.
#[test]
fn reconstruction_matches_relion_reconstruct() {
    use cryomotion::ops::simulate::{SimulateOptions, simulate};
    use cryomotion::reconstruction::fsc;

    let dir = tempfile::tempdir().unwrap();
    let truth = read_map(shared("prody_adk/1ake.mrc")).unwrap().volume;
    let options = SimulateOptions {
        count: 3000,
        pixel_size: 2.0,
        snr: Some(0.1),
        shift_sigma_angstrom: 3.0,
        seed: 5,
        ..Default::default()
    };
    simulate(&cryomotion::ops::simulate::Source::Map(truth), &options, dir.path()).unwrap();
    relion("relion_reconstruct", &["--i", "particles.star", "--o", "relion.mrc", "--ctf"], dir.path());
    let theirs = read_map(dir.path().join("relion.mrc")).unwrap();
    assert_eq!(theirs.voxel_size, [2.0; 3]);

    let ours = crate::util::reconstruct_all(dir.path());
    let curve = fsc(&ours, &theirs.volume);
    let last = (0.8 * 32.0) as usize;
    for (s, f) in curve.iter().enumerate().take(last + 1).skip(1) {
        assert!(*f >= 0.95, "FSC with relion_reconstruct {f:.3} at shell {s} of 32");
    }
}
