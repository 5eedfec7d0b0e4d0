//! STAR: every real file parses and round-trips; the particle table matches cryoDRGN's parses.

use cryomotion::ErrorKind;
use cryomotion::geometry::euler_to_matrix;
use cryomotion::io::images::{ImagePaths, ParticleImages};
use cryomotion::io::mrc::MrcReader;
use cryomotion::io::npy::NpyArray;
use cryomotion::io::relion::{particles_to_star, read_particles_star, write_particles_star};
use cryomotion::io::star::{StarFile, parse};
use cryomotion::particles::ParticleTable;

use crate::util::{cryodrgn_ctf_row, max_diff, shared, shared_files};

#[test]
fn every_star_file_parses_and_round_trips() {
    let files = shared_files(&["star"]);
    assert!(files.len() >= 29, "found {} STAR files", files.len());
    for path in files {
        let star = StarFile::read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!star.blocks.is_empty(), "{}", path.display());
        let text = star.to_string();
        let back = parse(&text).unwrap_or_else(|e| panic!("{}: re-parse: {e}", path.display()));
        assert_eq!(back, star, "{}", path.display());
    }
}

#[test]
fn block_and_row_counts_of_real_files() {
    let post = StarFile::read(shared("starfile_tests/postprocess.star")).unwrap();
    let fsc = post.block("fsc").unwrap().table().unwrap();
    assert_eq!(fsc.len(), 49);
    assert!(fsc.has_column("rlnFourierShellCorrelationCorrected"));
    assert_eq!(
        post.block("general").unwrap().pair("rlnFinalResolution").map(|v| v.parse::<f64>().is_ok()),
        Some(true)
    );

    let model = StarFile::read(shared("aspire_relion/sample_data_model.star")).unwrap();
    assert!(model.block("model_class_1").unwrap().table().unwrap().has_column("rlnGoldStandardFsc"));

    let mtf = StarFile::read(shared("relion_ref/mtf_k2_300kV.star")).unwrap();
    let t = mtf.blocks[0].table().unwrap();
    assert!(t.has_column("rlnResolutionInversePixel") && t.has_column("rlnMtfValue"));
}

struct Expect {
    file: &'static str,
    particles: usize,
    groups: usize,
    pixel_size: f64,
    box_size: Option<usize>,
}

#[test]
fn particle_tables_have_the_right_counts_and_optics() {
    let cases = [
        Expect {
            file: "cryojax_trpv1/trpv1_small_stack.star",
            particles: 10,
            groups: 1,
            pixel_size: 4.88,
            box_size: Some(48),
        },
        Expect {
            file: "cryodrgn_tests/relion31.star",
            particles: 5,
            groups: 1,
            pixel_size: 2.806,
            box_size: Some(256),
        },
        Expect {
            file: "cryodrgn_tests/relion31.v2.star",
            particles: 5,
            groups: 1,
            pixel_size: 2.806,
            box_size: Some(256),
        },
        Expect {
            file: "cryodrgn_tests/relion31.6opticsgroups.star",
            particles: 139,
            groups: 6,
            pixel_size: 1.25,
            box_size: Some(196),
        },
        Expect {
            file: "cryodrgn_tests/relion5.star",
            particles: 17,
            groups: 1,
            pixel_size: 0.89,
            box_size: Some(448),
        },
        // RELION 3.0: pixel size = detector pixel size (µm) × 10⁴ / magnification; box from the stack
        Expect {
            file: "cryodrgn_tests/empiar_10076_7.star",
            particles: 7,
            groups: 1,
            pixel_size: 5.0e4 / 38168.0,
            box_size: Some(320),
        },
        Expect {
            file: "cryodrgn_tests/FinalRefinement-OriginalParticles-PfCRT.star",
            particles: 5,
            groups: 1,
            pixel_size: 1.035,
            box_size: None,
        },
        Expect {
            file: "aspire_relion/sample_particles_relion31.star",
            particles: 17,
            groups: 2,
            pixel_size: 1.4,
            box_size: Some(200),
        },
        Expect {
            file: "aspire_relion/sample_particles_relion30.star",
            particles: 17,
            groups: 2,
            pixel_size: 1.338,
            box_size: Some(200),
        },
        Expect {
            file: "aspire_relion/rln_proj_64_shifted.star",
            particles: 4,
            groups: 1,
            pixel_size: 1.0,
            box_size: Some(64),
        },
        Expect {
            file: "relion_ref/ref_it002_data.star",
            particles: 9,
            groups: 1,
            pixel_size: 3.54,
            box_size: None,
        },
    ];
    for c in cases {
        let t = read_particles_star(shared(c.file)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.len(), t.optics_groups.len()), (c.particles, c.groups), "{}", c.file);
        let g = t.optics_of(0);
        assert!((g.pixel_size - c.pixel_size).abs() < 1e-3, "{}: pixel size {}", c.file, g.pixel_size);
        assert_eq!(g.image_size, c.box_size, "{}", c.file);
    }
}

#[test]
fn trpv1_values_spot_checked() {
    let t = read_particles_star(shared("cryojax_trpv1/trpv1_small_stack.star")).unwrap();
    let p = &t.particles[0];
    assert_eq!(p.image.index, 0);
    assert_eq!(p.image.path, "./batch_0_restacked.mrc");
    assert_eq!(p.euler_deg, [-30.073301, 137.509323, 167.963364]);
    assert_eq!(p.origin_angstrom, [-8.149219, -6.120969]);
    assert_eq!(
        (p.ctf.defocus_u_angstrom, p.ctf.defocus_v_angstrom, p.ctf.defocus_angle_deg),
        (14657.509766, 15222.730469, 53.749996)
    );
    assert_eq!(p.random_subset, Some(2));
    let g = t.optics_of(9);
    assert_eq!(
        (g.number, g.voltage_kv, g.spherical_aberration_mm, g.amplitude_contrast),
        (7, 300.0, 2.0, 0.1)
    );
}

#[test]
fn relion30_pixel_origins_become_angstroms() {
    // origins in pixels × pixel size 1 Å (optics block) in the shifted golden set
    let t = read_particles_star(shared("aspire_relion/rln_proj_64_shifted.star")).unwrap();
    assert_eq!(t.particles[0].origin_angstrom, [6.0, 10.0]);
    assert_eq!(t.particles[3].origin_angstrom, [-13.0, -3.0]);
    // RELION 3.0 file: rlnOriginX in pixels × (5 µm / 38168 … here PfCRT 1.035 Å)
    let t =
        read_particles_star(shared("cryodrgn_tests/FinalRefinement-OriginalParticles-PfCRT.star")).unwrap();
    let raw = StarFile::read(shared("cryodrgn_tests/FinalRefinement-OriginalParticles-PfCRT.star")).unwrap();
    let table = raw.blocks[0].table().unwrap();
    let ox: Vec<f64> = table.column("rlnOriginX").unwrap().map(|v| v.parse().unwrap()).collect();
    for (p, x) in t.particles.iter().zip(&ox) {
        assert!((p.origin_angstrom[0] - x * 1.035).abs() < 1e-9);
    }
}

#[test]
fn pfcrt_matches_cryodrgn_parse() {
    let t =
        read_particles_star(shared("cryodrgn_tests/FinalRefinement-OriginalParticles-PfCRT.star")).unwrap();
    let rot = NpyArray::read(shared("cryodrgn_golden/PfCRT_D300_rot.npy")).unwrap().values().unwrap();
    let trans = NpyArray::read(shared("cryodrgn_golden/PfCRT_D300_trans.npy")).unwrap().values().unwrap();
    let ctf = NpyArray::read(shared("cryodrgn_golden/PfCRT_ctf.npy")).unwrap().values().unwrap();
    assert_eq!((rot.len(), trans.len(), ctf.len()), (45, 10, 45));
    for (i, p) in t.particles.iter().enumerate() {
        let [r, tl, ps] = p.euler_deg;
        let a = euler_to_matrix(r, tl, ps);
        assert!(max_diff(&a, &rot[9 * i..9 * i + 9]) < 1e-4, "particle {i}");
        let pixel = t.optics_of(i).pixel_size;
        for k in 0..2 {
            // cryoDRGN: translation as a fraction of the 300-pixel box, origin's sign
            let expected = trans[2 * i + k];
            assert!((p.origin_angstrom[k] / pixel / 300.0 - expected).abs() < 1e-6, "particle {i} axis {k}");
        }
        let row = &ctf[9 * i..9 * i + 9];
        let ours = cryodrgn_ctf_row(&t, i, 300.0);
        for (k, (a, b)) in ours.iter().zip(row).enumerate() {
            if k == 7 {
                // no rlnAmplitudeContrast in the file: RELION's default is 0 (ctf.cpp), cryoDRGN's 0.1
                assert_eq!((*a, *b as f32), (0.0, 0.1));
                continue;
            }
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "particle {i} ctf column {k}: {a} vs {b}");
        }
    }
}

#[test]
fn relion31_block_order_does_not_matter() {
    let a = read_particles_star(shared("cryodrgn_tests/relion31.star")).unwrap();
    let b = read_particles_star(shared("cryodrgn_tests/relion31.v2.star")).unwrap();
    assert_eq!(a.particles, b.particles);
    assert_eq!(a.optics_groups, b.optics_groups);
}

fn assert_same_particles(a: &ParticleTable, b: &ParticleTable) {
    assert_eq!(a.len(), b.len());
    for (p, q) in a.particles.iter().zip(&b.particles) {
        assert_eq!(p.image, q.image);
        assert_eq!(p.random_subset, q.random_subset);
        for k in 0..3 {
            assert!((p.euler_deg[k] - q.euler_deg[k]).abs() < 1e-5);
        }
        for k in 0..2 {
            assert!((p.origin_angstrom[k] - q.origin_angstrom[k]).abs() < 1e-5);
        }
        assert!((p.ctf.defocus_u_angstrom - q.ctf.defocus_u_angstrom).abs() < 1e-3);
        let (g, h) = (&a.optics_groups[p.optics_group], &b.optics_groups[q.optics_group]);
        assert!((g.pixel_size - h.pixel_size).abs() < 1e-6);
        assert_eq!((g.voltage_kv, g.spherical_aberration_mm), (h.voltage_kv, h.spherical_aberration_mm));
    }
}

#[test]
fn particle_tables_write_back_with_every_column() {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "cryodrgn_tests/relion31.6opticsgroups.star",
        "cryodrgn_tests/relion5.star",
        "cryojax_trpv1/trpv1_small_stack.star",
        "aspire_relion/sample_particles_relion30.star",
        "cryodrgn_tests/FinalRefinement-OriginalParticles-PfCRT.star",
    ] {
        let source = shared(rel);
        let original = read_particles_star(&source).unwrap();
        let out = dir.path().join("out.star");
        write_particles_star(&out, &original, None).unwrap();
        let back = read_particles_star(&out).unwrap();
        assert_same_particles(&original, &back);
        // every column other than the RELION 3.0 optics and pixel-origin columns is kept
        let raw = StarFile::read(&source).unwrap();
        let raw_table =
            raw.blocks.iter().find_map(|b| b.table().filter(|t| t.has_column("rlnImageName"))).unwrap();
        let written = StarFile::read(&out).unwrap();
        let written_table = written.block("particles").unwrap().table().unwrap();
        let moved = [
            "rlnVoltage",
            "rlnSphericalAberration",
            "rlnAmplitudeContrast",
            "rlnMagnification",
            "rlnDetectorPixelSize",
            "rlnOriginX",
            "rlnOriginY",
        ];
        for name in raw_table.column_names() {
            if raw.block("optics").is_none() && moved.contains(&name) {
                continue;
            }
            let before: Vec<&str> = raw_table.column(name).unwrap().collect();
            let after: Vec<&str> =
                written_table.column(name).unwrap_or_else(|| panic!("{rel}: {name} lost")).collect();
            assert_eq!(before, after, "{rel}: column {name}");
        }
    }
}

#[test]
fn subsets_keep_rows_and_edits_are_written() {
    let mut t = read_particles_star(shared("cryodrgn_tests/relion31.6opticsgroups.star")).unwrap();
    t.particles[7].euler_deg = [10.0, 20.0, 30.0];
    t.particles[7].random_subset = Some(1);
    let star = particles_to_star(&t, Some(&[7, 2, 100])).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("subset.star");
    star.write(&path).unwrap();
    let back = read_particles_star(&path).unwrap();
    assert_eq!(back.len(), 3);
    assert_eq!(back.particles[0].euler_deg, [10.0, 20.0, 30.0]);
    assert_eq!(back.particles[0].random_subset, Some(1));
    assert_eq!(back.particles[1].image, t.particles[2].image);
    assert_eq!(back.particles[2].image, t.particles[100].image);
    assert_eq!(back.optics_of(2).number, t.optics_of(100).number);
}

#[test]
fn image_paths_resolve_from_the_star_directory_upwards() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    std::fs::create_dir_all(project.join("Refine3D/job010")).unwrap();
    std::fs::create_dir_all(project.join("Extract")).unwrap();
    std::fs::copy(shared("cryojax_trpv1/trpv1_small_stack.mrcs"), project.join("Extract/particles.mrcs"))
        .unwrap();
    let text = std::fs::read_to_string(shared("cryojax_trpv1/trpv1_small_stack.star"))
        .unwrap()
        .replace("./batch_0_restacked.mrc", "Extract/particles.mrcs");
    let star = project.join("Refine3D/job010/run_data.star");
    std::fs::write(&star, text).unwrap();
    let table = read_particles_star(&star).unwrap();
    let images = ParticleImages::open(&table, &ImagePaths::default()).unwrap();
    let reader = MrcReader::open(shared("cryojax_trpv1/trpv1_small_stack.mrcs")).unwrap();
    let (mut a, mut b, mut scratch) = (vec![0.0; 48 * 48], vec![0.0; 48 * 48], Vec::new());
    images.read(4, &mut a, &mut scratch).unwrap();
    reader.read_image(4, &mut b).unwrap();
    assert_eq!(a, b);

    // --project-dir: only that directory is tried
    let paths = ImagePaths { project_dir: Some(project.join("Refine3D")), ..Default::default() };
    let e = ParticleImages::open(&table, &paths).err().unwrap();
    let msg = e.to_string();
    assert!(msg.contains("row 1") && msg.contains("Refine3D/Extract/particles.mrcs"), "{msg}");
}

#[test]
fn stale_stack_names_fail_clearly_and_can_be_remapped() {
    let star = shared("cryojax_trpv1/trpv1_small_stack.star");
    let table = read_particles_star(&star).unwrap();
    let e = ParticleImages::open(&table, &ImagePaths::default()).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::MissingField);
    let msg = e.to_string();
    assert!(msg.contains("row 1") && msg.contains("batch_0_restacked.mrc") && msg.contains("tried"), "{msg}");

    let paths = ImagePaths {
        remap: vec![("./batch_0_restacked.mrc".into(), shared("cryojax_trpv1/trpv1_small_stack.mrcs"))],
        ..Default::default()
    };
    let images = ParticleImages::open(&table, &paths).unwrap();
    assert_eq!((images.len(), images.shape()), (10, [48, 48]));
}

#[test]
fn index_beyond_stack_and_mixed_boxes_name_the_row() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(shared("cryojax_trpv1/trpv1_small_stack.mrcs"), dir.path().join("a.mrcs")).unwrap();
    std::fs::copy(shared("cryodrgn_tests/relion31.mrcs"), dir.path().join("b.mrcs")).unwrap();
    let header = "data_particles\nloop_\n_rlnImageName\n_rlnImagePixelSize\n";
    let beyond = dir.path().join("beyond.star");
    std::fs::write(&beyond, format!("{header}1@a.mrcs 1.0\n11@a.mrcs 1.0\n")).unwrap();
    let e =
        ParticleImages::open(&read_particles_star(&beyond).unwrap(), &ImagePaths::default()).err().unwrap();
    let msg = e.to_string();
    assert!(msg.contains("row 2") && msg.contains("image 11") && msg.contains("holds 10 images"), "{msg}");

    let mixed = dir.path().join("mixed.star");
    std::fs::write(&mixed, format!("{header}1@a.mrcs 1.0\n1@b.mrcs 1.0\n")).unwrap();
    let e =
        ParticleImages::open(&read_particles_star(&mixed).unwrap(), &ImagePaths::default()).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Mismatch);
    assert!(e.to_string().contains("row 2") && e.to_string().contains("mixed box sizes"), "{e}");
}

#[test]
fn bad_particle_files_name_the_row_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let optics = "data_optics\nloop_\n_rlnOpticsGroup\n_rlnImagePixelSize\n_rlnVoltage\n1 1.0 300\n\n";
    let p = write(
        "nan.star",
        &format!(
            "{optics}data_particles\nloop_\n_rlnImageName\n_rlnDefocusU\n1@a.mrcs 10000\n2@a.mrcs abc\n"
        ),
    );
    let e = read_particles_star(&p).unwrap_err();
    assert_eq!((e.kind(), e.row(), e.field()), (ErrorKind::InvalidValue, Some(2), Some("rlnDefocusU")));
    assert!(e.to_string().starts_with(&p.display().to_string()));

    let p = write(
        "group.star",
        &format!("{optics}data_particles\nloop_\n_rlnImageName\n_rlnOpticsGroup\n1@a.mrcs 2\n"),
    );
    let e = read_particles_star(&p).unwrap_err();
    assert_eq!((e.row(), e.field()), (Some(1), Some("rlnOpticsGroup")));

    let p = write(
        "subset.star",
        &format!("{optics}data_particles\nloop_\n_rlnImageName\n_rlnRandomSubset\n1@a.mrcs 3\n"),
    );
    assert_eq!(read_particles_star(&p).unwrap_err().field(), Some("rlnRandomSubset"));

    let p = write(
        "dup.star",
        &format!("{optics}data_particles\nloop_\n_rlnImageName\n_rlnImageName\n1@a.mrcs 1@a.mrcs\n"),
    );
    let e = read_particles_star(&p).unwrap_err();
    assert_eq!((e.kind(), e.line()), (ErrorKind::DuplicateField, Some(11)));

    let p = write("noimage.star", "data_particles\nloop_\n_rlnAngleRot\n1\n");
    assert_eq!(read_particles_star(&p).unwrap_err().kind(), ErrorKind::MissingField);

    let p = write("nopixel.star", "data_particles\nloop_\n_rlnImageName\n1@missing.mrcs\n");
    let e = read_particles_star(&p).unwrap_err();
    assert_eq!((e.kind(), e.field()), (ErrorKind::MissingField, Some("rlnImagePixelSize")));

    let p = write("badname.star", &format!("{optics}data_particles\nloop_\n_rlnImageName\nx@a.mrcs\n"));
    assert_eq!(read_particles_star(&p).unwrap_err().field(), Some("rlnImageName"));
}

#[test]
fn images_whose_box_differs_from_their_optics_group_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(shared("cryojax_trpv1/trpv1_small_stack.mrcs"), dir.path().join("a.mrcs")).unwrap();
    let text = "data_optics\nloop_\n_rlnOpticsGroup\n_rlnImagePixelSize\n_rlnImageSize\n1 4.88 64\n\n\
                data_particles\nloop_\n_rlnImageName\n_rlnOpticsGroup\n1@a.mrcs 1\n";
    let star = dir.path().join("p.star");
    std::fs::write(&star, text).unwrap();
    let e = ParticleImages::open(&read_particles_star(&star).unwrap(), &ImagePaths::default()).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Mismatch);
    let msg = e.to_string();
    assert!(msg.contains("row 1") && msg.contains("48×48") && msg.contains("box is 64"), "{msg}");
}
