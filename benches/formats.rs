//! File-format throughput at the scale users have (10⁶ particles, large stacks).
//! Run: `cargo bench --bench formats` (prints the figures; no pass/fail).

use std::time::Instant;

use cryomotion::array::ImageStack;
use cryomotion::io::mrc::{Mode, MrcReader, write_stack};
use cryomotion::io::relion::{particles_from_star, particles_to_star};
use cryomotion::io::star::parse;

fn particle_star(rows: usize) -> String {
    let mut s = String::from(
        "# version 30001\ndata_optics\nloop_\n_rlnOpticsGroup #1\n_rlnOpticsGroupName #2\n_rlnVoltage #3\n\
         _rlnSphericalAberration #4\n_rlnAmplitudeContrast #5\n_rlnImagePixelSize #6\n_rlnImageSize #7\n\
         _rlnImageDimensionality #8\n1 opticsGroup1 300.0 2.7 0.1 1.06 256 2\n\n# version 30001\n\
         data_particles\nloop_\n",
    );
    let cols = [
        "rlnImageName",
        "rlnMicrographName",
        "rlnCoordinateX",
        "rlnCoordinateY",
        "rlnAngleRot",
        "rlnAngleTilt",
        "rlnAnglePsi",
        "rlnOriginXAngst",
        "rlnOriginYAngst",
        "rlnDefocusU",
        "rlnDefocusV",
        "rlnDefocusAngle",
        "rlnPhaseShift",
        "rlnCtfBfactor",
        "rlnOpticsGroup",
        "rlnRandomSubset",
        "rlnClassNumber",
        "rlnNormCorrection",
        "rlnLogLikeliContribution",
        "rlnMaxValueProbDistribution",
    ];
    for (k, c) in cols.iter().enumerate() {
        s.push_str(&format!("_{c} #{}\n", k + 1));
    }
    for i in 0..rows {
        let f = i as f64;
        s.push_str(&format!(
            "{:06}@Extract/job012/Movies/mic_{:05}.mrcs MotionCorr/job002/Movies/mic_{:05}.mrc {:.6} {:.6} \
             {:.6} {:.6} {:.6} {:.6} {:.6} {:.6} {:.6} {:.6} 0.000000 0.000000 1 {} 1 0.812345 123456.789 0.456\n",
            i % 500 + 1, i / 500, i / 500, (f * 7.3) % 4000.0, (f * 3.1) % 4000.0, (f * 1.7) % 360.0 - 180.0,
            (f * 0.9) % 180.0, (f * 2.3) % 360.0 - 180.0, (f * 0.37) % 20.0 - 10.0, (f * 0.53) % 20.0 - 10.0,
            10000.0 + (f * 13.0) % 20000.0, 10100.0 + (f * 13.0) % 20000.0, (f * 0.7) % 180.0, i % 2 + 1
        ));
    }
    s
}

fn main() {
    let rows = 1_000_000;
    let text = particle_star(rows);
    let mb = text.len() as f64 / 1e6;

    let t = Instant::now();
    let star = parse(&text).unwrap();
    let parse_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let table = particles_from_star(star, std::path::Path::new("bench.star"), None).unwrap();
    let typed_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let updated = particles_to_star(&table, None).unwrap();
    let update_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let out = updated.to_string();
    let write_s = t.elapsed().as_secs_f64();
    println!("STAR, {rows} particles × 20 columns ({mb:.0} MB):");
    println!("  parse        {parse_s:6.2} s  ({:.0} MB/s)", mb / parse_s);
    println!("  typed table  {typed_s:6.2} s");
    println!("  back to STAR {update_s:6.2} s  (typed values into the original columns)");
    println!("  write text   {write_s:6.2} s  ({:.0} MB/s)", out.len() as f64 / 1e6 / write_s);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stack.mrcs");
    let (count, n) = (2000, 256);
    let mut stack = ImageStack::zeros(count, [n, n]);
    stack.data.iter_mut().enumerate().for_each(|(i, v)| *v = (i % 97) as f32);
    let t = Instant::now();
    write_stack(&path, &stack, 1.0, Mode::Float32).unwrap();
    let write_s = t.elapsed().as_secs_f64();
    drop(stack);
    let reader = MrcReader::open(&path).unwrap();
    let (mut image, mut scratch) = (vec![0.0f32; n * n], Vec::new());
    let t = Instant::now();
    for k in 0..count {
        reader.read_image_with_scratch((k * 7919) % count, &mut image, &mut scratch).unwrap();
    }
    let read_s = t.elapsed().as_secs_f64();
    let gb = (count * n * n * 4) as f64 / 1e9;
    println!("MRC stack, {count} images of {n}² float32 ({gb:.2} GB):");
    println!("  write        {write_s:6.2} s  ({:.2} GB/s)", gb / write_s);
    println!("  random reads {read_s:6.2} s  ({:.0} images/s, page cache)", count as f64 / read_s);
}
