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
