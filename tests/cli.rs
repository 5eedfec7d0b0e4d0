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
