//! The `cryomotion` binary, run as a user would.

use std::process::Command;

use crate::util::{shared, shared_files};

fn cryomotion(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cryomotion")).args(args).output().unwrap()
}

#[test]
fn info_runs_on_every_file_in_shared_data() {
    let files = shared_files(&[]);
    let args: Vec<&std::ffi::OsStr> = files.iter().map(|p| p.as_os_str()).collect();
    let out = cryomotion(&[&["info".as_ref()], args.as_slice()].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for f in &files {
        assert!(stdout.contains(&f.display().to_string()), "no report for {}", f.display());
    }
}

#[test]
fn info_reports_what_a_user_needs() {
    let star = shared("cryojax_trpv1/trpv1_small_stack.star");
    let map = shared("relion_ref/ref_model_betagal_100.mrc");
    let out = cryomotion(&["info".as_ref(), star.as_os_str(), map.as_os_str()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "particles          10",
        "4.88 Å/px",
        "box 48",
        "half sets          5 / 5",
        "100 × 100 × 100",
        "3.5400 × 3.5400 × 3.5400 Å",
        "-3.540, -3.540, -3.540 Å",
    ] {
        assert!(text.contains(expected), "missing '{expected}' in:\n{text}");
    }
}

#[test]
fn info_on_a_bad_file_names_it_and_still_reports_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.mrc");
    std::fs::write(&bad, [0u8; 10]).unwrap();
    let good = shared("mrcfile_emdb/EMD-3197.map");
    let out = cryomotion(&["info".as_ref(), bad.as_os_str(), good.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.mrc") && stderr.contains("10 of 1024 bytes"), "{stderr}");
    assert!(!stderr.contains("panicked"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("20 × 20 × 20"));
}

#[test]
fn every_command_has_help() {
    let out = cryomotion(&["info".as_ref(), "--help".as_ref()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Example"));
    let out = cryomotion(&["--help".as_ref()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("info"));
}

#[test]
fn the_readme_example_finds_its_images() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let star = root.join("examples/data/trpv1_particles.star");
    let map = root.join("examples/data/trpv1_map.mrc");
    let out = cryomotion(&["info".as_ref(), star.as_os_str(), map.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("images             all found, 48 × 48 px"), "{text}");
    assert!(text.contains("mode               12 (float16)"), "{text}");
}

#[test]
fn project_dir_sets_where_images_are_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("meta")).unwrap();
    std::fs::create_dir_all(dir.path().join("elsewhere/stacks")).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        root.join("examples/data/trpv1_particles.mrcs"),
        dir.path().join("elsewhere/stacks/p.mrcs"),
    )
    .unwrap();
    let text = std::fs::read_to_string(root.join("examples/data/trpv1_particles.star"))
        .unwrap()
        .replace("trpv1_particles.mrcs", "stacks/p.mrcs");
    let star = dir.path().join("meta/p.star");
    std::fs::write(&star, text).unwrap();
    let run = |extra: &[&std::ffi::OsStr]| {
        let out = cryomotion(&[&["info".as_ref(), star.as_os_str()], extra].concat());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(run(&[]).contains("not readable: image stack 'stacks/p.mrcs' not found"));
    let elsewhere = dir.path().join("elsewhere");
    assert!(run(&["--project-dir".as_ref(), elsewhere.as_os_str()]).contains("all found, 48 × 48 px"));
}

fn run_ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cryomotion")).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_err(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cryomotion")).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn simulate_then_reconstruct_writes_maps_fsc_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).display().to_string();
    let map = shared("prody_adk/1ake.mrc").display().to_string();
    let said = run_ok(&[
        "simulate",
        "--map",
        &map,
        "--box",
        "32",
        "--n-particles",
        "600",
        "--snr",
        "1",
        "--o",
        &d("sim"),
    ]);
    assert!(said.contains("600 particles, box 32, 4 Å/px"), "{said}");
    let said =
        run_ok(&["reconstruct", &d("sim/particles.star"), "--o", &d("rec"), "--ctf", "--threads", "2"]);
    let resolution: f64 = said.rsplit("= ").next().unwrap().trim().trim_end_matches(" Å").parse().unwrap();
    assert!((8.0..=20.0).contains(&resolution), "{said}");
    for f in ["rec/half1.mrc", "rec/half2.mrc", "rec/map.mrc", "rec/fsc.star", "rec/fsc.png"] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let png = std::fs::read(dir.path().join("rec/fsc.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let said = run_ok(&["fsc", &d("rec/half1.mrc"), &d("rec/half2.mrc")]);
    assert!(said.contains("resolution at FSC 0.143"), "{said}");
    // a mask from the map, and the masked FSC corrected by phase randomisation
    let said = run_ok(&[
        "mask",
        "--map",
        &d("rec/map.mrc"),
        "--threshold",
        "0.05",
        "--lowpass",
        "12",
        "--o",
        &d("mask.mrc"),
    ]);
    assert!(said.contains("% of the box inside"), "{said}");
    run_ok(&[
        "reconstruct",
        &d("sim/particles.star"),
        "--o",
        &d("masked"),
        "--ctf",
        "--mask",
        &d("mask.mrc"),
    ]);
    let star = cryomotion::io::star::StarFile::read(dir.path().join("masked/fsc.star")).unwrap();
    let table = star.block("fsc").unwrap().table().unwrap();
    for column in [
        "rlnFourierShellCorrelationCorrected",
        "rlnCorrectedFourierShellCorrelationPhaseRandomizedMaskedMaps",
    ] {
        assert!(table.has_column(column), "{column}");
    }
    // only one half set: one map, no FSC
    run_ok(&["reconstruct", &d("sim/particles.star"), "--o", &d("half2"), "--ctf", "--subset", "2"]);
    assert!(dir.path().join("half2/map.mrc").exists());
}

#[test]
fn reconstruct_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).display().to_string();
    let map = shared("prody_adk/1ake.mrc").display().to_string();
    run_ok(&[
        "simulate",
        "--map",
        &map,
        "--box",
        "32",
        "--n-particles",
        "40",
        "--snr",
        "0",
        "--no-ctf",
        "--o",
        &d("sim"),
    ]);
    let e = run_err(&["reconstruct", &d("sim/particles.star"), "--o", &d("a"), "--ctf"]);
    assert!(e.contains("rlnDefocusU") && e.contains("particles.star"), "{e}");
    assert!(!dir.path().join("a/map.mrc").exists());

    // every particle in half set 1
    let star = std::fs::read_to_string(dir.path().join("sim/particles.star")).unwrap();
    let one_half: String = star
        .lines()
        .map(|l| if l.contains("@particles.mrcs") { l.replacen(" 2 ", " 1 ", 1) } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("sim/one_half.star"), one_half).unwrap();
    let e = run_err(&["reconstruct", &d("sim/one_half.star"), "--o", &d("b")]);
    assert!(e.contains("half set 2 is empty"), "{e}");

    // a NaN pixel in image 3
    let stack = dir.path().join("sim/particles.mrcs");
    let mut bytes = std::fs::read(&stack).unwrap();
    let at = 1024 + 4 * (2 * 32 * 32 + 100);
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&stack, bytes).unwrap();
    let e = run_err(&["reconstruct", &d("sim/particles.star"), "--o", &d("c")]);
    assert!(e.contains("row 3") && e.contains("NaN"), "{e}");
}

#[test]
fn gaussian_model_sits_on_the_map_in_chimerax_coordinates() {
    use cryomotion::io::atoms::read_atoms;
    use cryomotion::io::mrc::read_map;
    use cryomotion::ops::gaussian_model::load_model;
    let dir = tempfile::tempdir().unwrap();
    let map_path = shared("prody_adk/1ake.mrc");
    let pdb = shared("prody_adk/pdb1ake.pdb");
    let (map_s, pdb_s) = (map_path.to_str().unwrap(), pdb.to_str().unwrap());
    // residue mode: the point cloud lands exactly on the Cα atoms (same frame as the map)
    let out_dir = dir.path().join("residues");
    run_ok(&["gaussian-model", "--map", map_s, "--atomic-model", pdb_s, "--o", out_dir.to_str().unwrap()]);
    let points = read_atoms(out_dir.join("gaussians.pdb")).unwrap();
    let cas: Vec<_> = read_atoms(&pdb).unwrap().atoms().iter().filter(|a| a.name == "CA").cloned().collect();
    assert_eq!(points.atoms().len(), cas.len());
    for (p, ca) in points.atoms().iter().zip(&cas) {
        for k in 0..3 {
            assert!((p.position[k] - ca.position[k]).abs() < 2e-3, "{:?} vs {:?}", p.position, ca.position);
        }
    }
    // map mode: the rendered model keeps the map's pixel size and origin, fits it, and reloads
    let out_dir = dir.path().join("map");
    let text = run_ok(&[
        "gaussian-model",
        "--map",
        map_s,
        "--n-gaussians",
        "1500",
        "--o",
        out_dir.to_str().unwrap(),
    ]);
    assert!(text.contains("1500 Gaussians"), "{text}");
    let (map, model_map) = (read_map(&map_path).unwrap(), read_map(out_dir.join("gaussians.mrc")).unwrap());
    assert_eq!((model_map.voxel_size, model_map.origin), (map.voxel_size, map.origin));
    let curve = cryomotion::reconstruction::fsc(&map.volume, &model_map.volume);
    let shell_10a = (64.0 * 2.0 / 10.0) as usize;
    assert!(curve[1..=shell_10a].iter().all(|&f| f >= 0.9), "{curve:?}");
    let (model, n, pixel) = load_model(&out_dir.join("gaussians.weights")).unwrap();
    assert_eq!((model.len(), n, pixel), (1500, 64, 2.0));
    assert!(out_dir.join("gaussians_fsc.png").exists() && out_dir.join("gaussians_fsc.star").exists());
    // a point of the cloud is the model's position plus the map's centre
    let cloud = read_atoms(out_dir.join("gaussians.pdb")).unwrap();
    let centre = cryomotion::ops::gaussian_model::map_centre(&map);
    assert!((cloud.atoms()[0].position[0] - (centre[0] + model.positions[0] as f64)).abs() < 2e-3);
}

#[test]
fn gaussian_model_refuses_bad_input_clearly() {
    let map = shared("prody_adk/1ake.mrc");
    let err = run_err(&[
        "gaussian-model",
        "--map",
        map.to_str().unwrap(),
        "--initial-threshold",
        "1e9",
        "--o",
        "/tmp/x",
    ]);
    assert!(err.contains("threshold"), "{err}");
    let err = run_err(&["gaussian-model", "--map", "/nonexistent.mrc", "--o", "/tmp/x"]);
    assert!(err.contains("/nonexistent.mrc"), "{err}");
}
