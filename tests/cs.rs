//! cryoSPARC .cs: conversion against cryoDRGN's parse, cross-checks with STAR, subsets.

use cryomotion::geometry::{axis_angle_to_matrix, euler_to_matrix, matrix_to_euler, transpose};
use cryomotion::io::cs::{particles_to_cs, read_particles_cs, write_particles_cs};
use cryomotion::io::npy::NpyArray;
use cryomotion::io::relion::read_particles_star;

use crate::util::{cryodrgn_ctf_row, max_diff, shared};

#[test]
fn p12_j24_matches_cryodrgn_parse() {
    let path = shared("cryodrgn_tests/cryosparc_P12_J24_001_particles.cs");
    let t = read_particles_cs(&path).unwrap();
    assert_eq!(t.len(), 2019);
    assert!(t.has_poses && t.has_ctf);
    let rot = NpyArray::read(shared("cryodrgn_golden/cs_P12_J24_rot.npy")).unwrap().values().unwrap();
    let trans = NpyArray::read(shared("cryodrgn_golden/cs_P12_J24_trans.npy")).unwrap().values().unwrap();
    let ctf = NpyArray::read(shared("cryodrgn_golden/cs_P12_J24_ctf.npy")).unwrap().values().unwrap();
    assert_eq!((rot.len(), trans.len(), ctf.len()), (2019 * 9, 2019 * 2, 2019 * 9));
    for (i, p) in t.particles.iter().enumerate() {
        let [r, tl, ps] = p.euler_deg;
        let a = euler_to_matrix(r, tl, ps);
        assert!(max_diff(&a, &rot[9 * i..9 * i + 9]) < 1e-4, "particle {i}");
        let g = t.optics_of(i);
        for k in 0..2 {
            let expected = trans[2 * i + k];
            assert!((p.origin_angstrom[k] / g.pixel_size / 180.0 - expected).abs() < 1e-6, "particle {i}");
        }
        let ours = cryodrgn_ctf_row(&t, i, g.image_size.unwrap() as f64);
        for (k, (a, b)) in ours.iter().zip(&ctf[9 * i..9 * i + 9]).enumerate() {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "particle {i} ctf column {k}: {a} vs {b}");
        }
    }
    let halves = [1, 2].map(|s| t.particles.iter().filter(|p| p.random_subset == Some(s)).count());
    assert_eq!(halves[0] + halves[1], 2019);
}

#[test]
fn pose_conversion_round_trips_through_euler_angles() {
    // axis–angle → Rodrigues matrix → RELION matrix (transpose) → Euler → matrix
    let array = NpyArray::read(shared("cryodrgn_tests/cryosparc_P12_J24_001_particles.cs")).unwrap();
    for row in (0..array.len()).step_by(37) {
        let v = [0, 1, 2].map(|k| array.number(row, "alignments3D/pose", k).unwrap());
        let a = transpose(&axis_angle_to_matrix(v));
        let (r, t, p) = matrix_to_euler(&a);
        let flat: Vec<f64> = a.iter().flatten().copied().collect();
        assert!(max_diff(&euler_to_matrix(r, t, p), &flat) < 1e-9, "row {row}");
    }
}

#[test]
fn empiar_cs_and_star_describe_the_same_particles() {
    // two files written by different programs for the same 7 particles
    let cs = read_particles_cs(shared("cryodrgn_tests/empiar_10076_7.cs")).unwrap();
    let star = read_particles_star(shared("cryodrgn_tests/empiar_10076_7.star")).unwrap();
    assert_eq!((cs.len(), star.len()), (7, 7));
    assert!(!cs.has_poses && cs.has_ctf);
    for (a, b) in cs.particles.iter().zip(&star.particles) {
        assert_eq!(a.image.index, b.image.index);
        assert!((a.ctf.defocus_u_angstrom - b.ctf.defocus_u_angstrom).abs() < 0.5);
        assert!((a.ctf.defocus_v_angstrom - b.ctf.defocus_v_angstrom).abs() < 0.5);
        assert!((a.ctf.defocus_angle_deg - b.ctf.defocus_angle_deg).abs() < 0.01);
    }
    let (g, h) = (cs.optics_of(0), star.optics_of(0));
    assert!((g.pixel_size - h.pixel_size).abs() < 1e-3);
    assert_eq!((g.voltage_kv, g.image_size), (h.voltage_kv, h.image_size));
    assert!((g.spherical_aberration_mm - h.spherical_aberration_mm).abs() < 1e-6);
}

#[test]
fn exported_2d_job_has_ctf_but_no_3d_poses() {
    let t = read_particles_cs(shared("cryodrgn_tests/cryosparc_J2_particles_exported.cs")).unwrap();
    assert_eq!(t.len(), 22);
    assert!(!t.has_poses && t.has_ctf);
    assert!(t.particles.iter().all(|p| p.ctf.defocus_u_angstrom > 1000.0));
}

#[test]
fn subsets_keep_every_field_and_carry_edits() {
    let path = shared("cryodrgn_tests/cryosparc_P12_J24_001_particles.cs");
    let mut t = read_particles_cs(&path).unwrap();
    let original = NpyArray::read(&path).unwrap();
    let rows = [5usize, 0, 2018];
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("subset.cs");
    write_particles_cs(&out, &t, Some(&rows)).unwrap();
    let written = NpyArray::read(&out).unwrap();
    assert_eq!(written.fields, original.fields);
    assert_eq!(written, original.select_rows(&rows));

    // an edited pose and origin are written, and read back as the same rotation
    t.particles[5].euler_deg = [10.0, 70.0, -40.0];
    t.particles[5].origin_angstrom = [2.95, -5.9];
    t.particles[5].random_subset = Some(2);
    write_particles_cs(&out, &t, Some(&rows)).unwrap();
    let back = read_particles_cs(&out).unwrap();
    let p = &back.particles[0];
    let flat: Vec<f64> = euler_to_matrix(10.0, 70.0, -40.0).iter().flatten().copied().collect();
    let [r, tl, ps] = p.euler_deg;
    assert!(max_diff(&euler_to_matrix(r, tl, ps), &flat) < 1e-5);
    assert!((p.origin_angstrom[0] - 2.95).abs() < 1e-5 && (p.origin_angstrom[1] + 5.9).abs() < 1e-5);
    assert_eq!(p.random_subset, Some(2));
    assert_eq!(back.particles[1], t.particles[0]);

    // .cs subsets only for tables read from .cs
    let star = read_particles_star(shared("cryodrgn_tests/relion31.star")).unwrap();
    assert!(particles_to_cs(&star, None).is_err());
}

#[test]
fn truncated_cs_is_an_error_naming_the_file() {
    let bytes = std::fs::read(shared("cryodrgn_tests/empiar_10076_7.cs")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.cs");
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    let e = read_particles_cs(&p).unwrap_err();
    assert!(e.to_string().contains("cut.cs") && e.to_string().contains("truncated"), "{e}");
}

#[test]
fn cryodrgn_pickles_hold_the_same_arrays_as_its_npy_files() {
    use cryomotion::io::pickle::{PyValue, read_pickle};
    let npy = |rel: &str| NpyArray::read(shared(rel)).unwrap();
    let array = |v: &PyValue| match v {
        PyValue::Array(a) => a.clone(),
        other => panic!("not an array: {other:?}"),
    };
    let ctf = read_pickle(shared("cryodrgn_golden/cs_P12_J24_ctf.pkl")).unwrap();
    let ctf = array(&ctf);
    assert_eq!(ctf.shape, vec![2019, 9]);
    assert_eq!(ctf.values().unwrap(), npy("cryodrgn_golden/cs_P12_J24_ctf.npy").values().unwrap());

    let PyValue::Tuple(pose) = read_pickle(shared("cryodrgn_golden/PfCRT_pose_D300.pkl")).unwrap() else {
        panic!("poses are a (rotations, translations) tuple")
    };
    assert_eq!(
        array(&pose[0]).values().unwrap(),
        npy("cryodrgn_golden/PfCRT_D300_rot.npy").values().unwrap()
    );
    assert_eq!(
        array(&pose[1]).values().unwrap(),
        npy("cryodrgn_golden/PfCRT_D300_trans.npy").values().unwrap()
    );
}

#[test]
fn cryosparc_particles_convert_to_a_relion_star_file() {
    use cryomotion::io::relion::write_particles_star;
    let cs = read_particles_cs(shared("cryodrgn_tests/cryosparc_P12_J24_001_particles.cs")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("from_cs.star");
    write_particles_star(&out, &cs, None).unwrap();
    let star = read_particles_star(&out).unwrap();
    assert_eq!(star.len(), cs.len());
    assert_eq!(star.optics_groups.len(), 1);
    let g = star.optics_of(0);
    assert_eq!((g.image_size, g.voltage_kv), (Some(180), 200.0));
    assert!((g.pixel_size - 2.95).abs() < 1e-5);
    for (a, b) in cs.particles.iter().zip(&star.particles) {
        assert_eq!((&a.image.path, a.image.index), (&b.image.path, b.image.index));
        let ma: Vec<f64> = euler_to_matrix(a.euler_deg[0], a.euler_deg[1], a.euler_deg[2])
            .iter()
            .flatten()
            .copied()
            .collect();
        assert!(max_diff(&euler_to_matrix(b.euler_deg[0], b.euler_deg[1], b.euler_deg[2]), &ma) < 1e-5);
        assert!((a.origin_angstrom[0] - b.origin_angstrom[0]).abs() < 1e-5);
        assert!((a.ctf.defocus_u_angstrom - b.ctf.defocus_u_angstrom).abs() < 1e-3);
        assert_eq!(a.random_subset, b.random_subset);
    }
}
