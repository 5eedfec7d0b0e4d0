//! `cryomotion demo --quick`: the whole pipeline on the built-in example (run once per test
//! process as the trained example), its summary against the truth, and its outputs.

use crate::deformations::trained_example;

/// The numbers after `label` on the summary line that starts with `line`.
fn figure(summary: &str, line: &str, label: &str) -> f64 {
    let row =
        summary.lines().find(|l| l.starts_with(line)).unwrap_or_else(|| panic!("no '{line}' in {summary}"));
    let after = &row[row.find(label).unwrap_or_else(|| panic!("no '{label}' in {row}")) + label.len()..];
    after.split_whitespace().next().unwrap().trim_end_matches(['Å', ',', ';']).parse().unwrap()
}

#[test]
fn the_quick_demo_learns_the_motion_and_sharpens_the_map() {
    let dir = trained_example();
    let summary = std::fs::read_to_string(dir.join("demo_stdout.txt")).unwrap();
    // every step is shown as the command a user would type
    for step in [
        "simulate",
        "reconstruct",
        "optimize-deformations",
        "explore-latent-space",
        "optimize-inverse-deformations",
        "deformable-backprojection",
    ] {
        assert!(summary.contains(&format!("$ cryomotion {step} ")), "{step} not shown: {summary}");
    }
    for half in 1..=2 {
        let rho =
            figure(&summary, &format!("latent PC1 against the true opening (half {half})"), "|Spearman|");
        assert!(rho >= 0.8, "half {half}: |Spearman| {rho}");
    }
    let truth = "against the true mean conformation";
    let plain = figure(&summary, "plain reconstruction", truth);
    let deformable = figure(&summary, "deformable backprojection", truth);
    assert!(deformable > plain + 0.02, "deformable {deformable}, plain {plain}");
    let resolution = figure(&summary, "deformable backprojection", ":");
    assert!(resolution > 2.0 * 1.5 && resolution < 8.0, "{resolution} Å");
    let later = dir.join("demo_outputs");
    for f in [
        "explore/half1/trajectory_pc1/map_000.mrc",
        "inverse_deformations/tile_residuals.csv",
        "backprojection/map_half1.mrc",
        "backprojection/fsc.png",
    ] {
        assert!(later.join(f).is_file(), "{f} missing");
    }
    assert!(dir.join("adk_1ake_chain_a.pdb").is_file());
    assert!(summary.contains("cryomotion view "), "the summary names the viewer: {summary}");
}
