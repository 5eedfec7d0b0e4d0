//! MRC: real EMDB and RELION files, every mode, byte order, stacks, bad input.

use cryomotion::ErrorKind;
use cryomotion::array::{ImageStack, Volume};
use cryomotion::io::mrc::{self, Mode, MrcHeader, MrcReader, Stats};

use crate::util::{shared, shared_files};

fn raw_f32(bytes: &[u8], offset: usize) -> f32 {
    f32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

#[test]
fn emd_3001_axis_order_312_and_extended_header_read_into_xyz() {
    let path = shared("mrcfile_emdb/EMD-3001.map");
    let map = mrc::read_map(&path).unwrap();
    let h = &map.header;
    assert_eq!(h.dims, [73, 43, 25]);
    assert_eq!(h.axis_order, [3, 1, 2]);
    assert_eq!(h.nsymbt, 160);
    assert_eq!(h.ispg, 4);
    // columns run along Z, rows along X, sections along Y
    assert_eq!(map.volume.shape, [43, 25, 73]);
    // independent reading of the raw file: element (section s, row r, column c) is at
    // 1024 + 160 + 4·((s·43 + r)·73 + c) and is voxel x = r, y = s, z = c
    let bytes = std::fs::read(&path).unwrap();
    for &(s, r, c) in &[(0, 0, 0), (3, 7, 11), (24, 42, 72), (12, 20, 36), (5, 0, 70)] {
        let expected = raw_f32(&bytes, 1184 + 4 * ((s * 43 + r) * 73 + c));
        assert_eq!(map.volume.get(r, s, c), expected, "section {s} row {r} column {c}");
    }
    // voxel size = cell / sampling along X, Y, Z
    let vs = map.voxel_size;
    for (k, (cell, m)) in [(17.93f32, 40.0f32), (4.71, 12.0), (33.03, 72.0)].iter().enumerate() {
        assert!((vs[k] - cell / m).abs() < 1e-3, "axis {k}: {} vs {}", vs[k], cell / m);
    }
}

#[test]
fn header_statistics_written_by_other_programs_match_the_data() {
    // EMDB, RELION and cryoJAX wrote true min/max/mean into these headers
    let files = [
        "mrcfile_emdb/EMD-3001.map",
        "mrcfile_emdb/EMD-3197.map",
        "cryojax_trpv1/trpv1_volume.mrc",
        "cryojax_trpv1/trpv1_small_stack.mrcs",
        "aspire_relion/sample.mrcs",
        "prody_adk/1ake.mrc",
        "tomodrgn_10076/10076_classD_32.mrc",
    ];
    for rel in files {
        let reader = MrcReader::open(shared(rel)).unwrap();
        let mut stats = Stats::default();
        stats.add(&reader.read_volume().unwrap().data);
        let h = reader.header();
        let tol = 1e-3 * (h.dmax - h.dmin) as f64;
        assert!((stats.min - h.dmin as f64).abs() <= tol, "{rel}: min {} vs header {}", stats.min, h.dmin);
        assert!((stats.max - h.dmax as f64).abs() <= tol, "{rel}: max {} vs header {}", stats.max, h.dmax);
        assert!(
            (stats.mean() - h.dmean as f64).abs() <= tol,
            "{rel}: mean {} vs header {}",
            stats.mean(),
            h.dmean
        );
    }
}

#[test]
fn pixel_sizes_and_origins_of_real_maps() {
    let cases: [(&str, f32, [f32; 3]); 4] = [
        ("cryojax_trpv1/trpv1_volume.mrc", 4.88, [0.0; 3]),
        ("relion_ref/ref_model_betagal_100.mrc", 3.54, [-3.54; 3]),
        ("prody_adk/1ake.mrc", 2.0, [-64.0; 3]),
        ("mrcfile_emdb/EMD-3197.map", 11.4, [0.0; 3]),
    ];
    for (rel, pixel, origin) in cases {
        let map = mrc::read_map(shared(rel)).unwrap();
        assert!(map.voxel_size.iter().all(|v| (v - pixel).abs() < 1e-4), "{rel}: {:?}", map.voxel_size);
        assert_eq!(map.origin, origin, "{rel}");
    }
    // cell unset: pixel size falls back to 1 Å and the header says so
    let h = MrcReader::open(shared("aspire_relion/clean70SRibosome_vol_65p.mrc")).unwrap().header().clone();
    assert!(!h.has_voxel_size());
    assert_eq!(h.voxel_size(), [1.0; 3]);
}

#[test]
fn real_stacks_give_random_access_to_single_images() {
    for (rel, count, size) in [
        ("cryojax_trpv1/trpv1_small_stack.mrcs", 10, 48),
        ("cryodrgn_tests/relion31.mrcs", 5, 256),
        ("cryodrgn_tests/empiar_10076_7.mrc", 7, 320),
        ("aspire_relion/sample.mrcs", 17, 200),
    ] {
        let path = shared(rel);
        let reader = MrcReader::open(&path).unwrap();
        assert_eq!((reader.image_count(), reader.image_shape()), (count, [size, size]), "{rel}");
        let whole = reader.read_volume().unwrap();
        let mut image = vec![0.0; size * size];
        for k in [count - 1, 0, count / 2] {
            reader.read_image(k, &mut image).unwrap();
            assert_eq!(image, whole.data[k * size * size..(k + 1) * size * size], "{rel} image {k}");
        }
        let e = reader.read_image(count, &mut image).unwrap_err();
        assert!(e.to_string().contains(&format!("holds {count} images")), "{e}");
    }
}

fn integer_volume() -> Volume {
    let shape = [5, 4, 3];
    let data = (0..60).map(|i| (i as f32 * 7.0) % 120.0 - 3.0 * (i % 2) as f32).collect();
    Volume::from_vec(shape, data)
}

#[test]
fn every_mode_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let volume = integer_volume(); // values in [-3, 120): exact in every mode but uint16 (negatives)
    for mode in [Mode::Int8, Mode::Int16, Mode::Float32, Mode::Uint16, Mode::Float16] {
        let path = dir.path().join(format!("m{}.mrc", mode.number()));
        mrc::write_volume(&path, &volume, 1.5, [1.0, 2.0, 3.0], mode).unwrap();
        let map = mrc::read_map(&path).unwrap();
        assert_eq!(map.header.mode, mode);
        assert_eq!(map.volume.shape, volume.shape);
        let expected: Vec<f32> = match mode {
            Mode::Uint16 => volume.data.iter().map(|v| v.max(0.0)).collect(),
            _ => volume.data.clone(),
        };
        assert_eq!(map.volume.data, expected, "mode {}", mode.number());
        assert_eq!(map.voxel_size, [1.5; 3]);
        assert_eq!(map.origin, [1.0, 2.0, 3.0]);
        // file size is exactly header + data
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(len, 1024 + 60 * mode.bytes() as u64);
    }
}

#[test]
fn float16_rounds_to_nearest_half_precision() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.mrc");
    let values = vec![0.1f32, -1.0 / 3.0, 1000.7, 1e-3, 65504.0, -2.5];
    let volume = Volume::from_vec([6, 1, 1], values.clone());
    mrc::write_volume(&path, &volume, 1.0, [0.0; 3], Mode::Float16).unwrap();
    let back = mrc::read_map(&path).unwrap().volume.data;
    for (v, b) in values.iter().zip(&back) {
        // half precision: 11 significant bits
        assert!((v - b).abs() <= v.abs() * 2f32.powi(-11), "{v} -> {b}");
    }
    assert_eq!(back[4], 65504.0);
}

#[test]
fn written_header_has_true_statistics_tag_and_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.mrc");
    let volume = Volume::from_vec([2, 2, 1], vec![1.0, 2.0, 3.0, 6.0]);
    mrc::write_volume(&path, &volume, 2.0, [0.0; 3], Mode::Float32).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[208..212], b"MAP ");
    assert_eq!(&bytes[212..214], &[0x44, 0x44]);
    assert_eq!([raw_f32(&bytes, 76), raw_f32(&bytes, 80), raw_f32(&bytes, 84)], [1.0, 6.0, 3.0]);
    // rms deviation from the mean: sqrt(((1-3)² + (2-3)² + 0 + (6-3)²) / 4)
    assert!((raw_f32(&bytes, 216) - (14.0f32 / 4.0).sqrt()).abs() < 1e-6);
    // cell = n × voxel size, sampling = n
    assert_eq!(raw_f32(&bytes, 40), 4.0);
    assert_eq!(i32::from_le_bytes(bytes[28..32].try_into().unwrap()), 2);
}

#[test]
fn big_endian_files_read_like_little_endian_ones() {
    let dir = tempfile::tempdir().unwrap();
    let le_path = dir.path().join("le.mrc");
    let volume = integer_volume();
    mrc::write_volume(&le_path, &volume, 3.0, [0.5, 0.0, 0.0], Mode::Int16).unwrap();
    let mut bytes = std::fs::read(&le_path).unwrap();
    for w in 0..56 {
        if w != 26 && w != 52 {
            bytes[4 * w..4 * w + 4].reverse();
        }
    }
    bytes[212..216].copy_from_slice(&[0x11, 0x11, 0, 0]);
    for v in bytes[1024..].chunks_exact_mut(2) {
        v.reverse();
    }
    let be_path = dir.path().join("be.mrc");
    std::fs::write(&be_path, &bytes).unwrap();
    let map = mrc::read_map(&be_path).unwrap();
    assert!(map.header.big_endian);
    assert_eq!(map.volume, volume);
    assert_eq!((map.voxel_size, map.origin), ([3.0; 3], [0.5, 0.0, 0.0]));
}

#[test]
fn stack_writer_streams_images_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.mrcs");
    let mut stack = ImageStack::zeros(4, [6, 3]);
    for (i, v) in stack.data.iter_mut().enumerate() {
        *v = (i as f32).sin();
    }
    mrc::write_stack(&path, &stack, 1.25, Mode::Float32).unwrap();
    let reader = MrcReader::open(&path).unwrap();
    assert!(reader.header().is_stack());
    assert_eq!((reader.image_count(), reader.image_shape()), (4, [6, 3]));
    assert_eq!(reader.header().voxel_size()[0], 1.25);
    let mut img = vec![0.0; 18];
    reader.read_image(2, &mut img).unwrap();
    assert_eq!(img, stack.image(2));
}

#[test]
fn bad_files_give_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.mrc");
    mrc::write_volume(&good, &integer_volume(), 1.0, [0.0; 3], Mode::Float32).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    let truncated = dir.path().join("truncated.mrc");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let e = MrcReader::open(&truncated).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format);
    assert!(e.to_string().starts_with(&truncated.display().to_string()), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");

    let short = dir.path().join("short.mrc");
    std::fs::write(&short, &bytes[..300]).unwrap();
    assert!(MrcReader::open(&short).unwrap_err().to_string().contains("300 of 1024"));

    let mut bad_mode = bytes.clone();
    bad_mode[12..16].copy_from_slice(&4i32.to_le_bytes());
    let p = dir.path().join("mode.mrc");
    std::fs::write(&p, &bad_mode).unwrap();
    let e = MrcReader::open(&p).unwrap_err();
    assert_eq!((e.kind(), e.field()), (ErrorKind::Unsupported, Some("mode")));

    let mut bad_dims = bytes.clone();
    bad_dims[4..8].copy_from_slice(&(-5i32).to_le_bytes());
    let p = dir.path().join("dims.mrc");
    std::fs::write(&p, &bad_dims).unwrap();
    assert_eq!(MrcReader::open(&p).unwrap_err().field(), Some("ny"));

    let mut huge = bytes.clone();
    huge[0..4].copy_from_slice(&i32::MAX.to_le_bytes());
    let p = dir.path().join("huge.mrc");
    std::fs::write(&p, &huge).unwrap();
    assert!(MrcReader::open(&p).unwrap_err().to_string().contains("truncated"));

    let missing = dir.path().join("missing.mrc");
    let e = MrcReader::open(&missing).unwrap_err();
    assert_eq!((e.kind(), e.path()), (ErrorKind::Io, Some(missing.as_path())));
}

#[test]
fn every_real_mrc_file_opens() {
    let files = shared_files(&["mrc", "mrcs", "map"]);
    assert!(files.len() >= 18, "found {} MRC files", files.len());
    for path in files {
        let reader = MrcReader::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let volume = reader.read_volume().unwrap();
        assert_eq!(volume.data.len(), reader.header().dims.iter().product::<usize>());
        assert!(volume.data.iter().all(|v| v.is_finite()), "{}", path.display());
    }
}

#[test]
fn header_to_bytes_is_what_parse_reads() {
    let h = MrcHeader::new([3, 4, 5], Mode::Float32, [1.1, 1.2, 1.3], [7.0, 8.0, 9.0]);
    assert_eq!(MrcHeader::parse(&h.to_bytes()).unwrap(), h);
}

#[test]
fn in_memory_reads_equal_file_reads() {
    let path = shared("mrcfile_emdb/EMD-3001.map");
    let from_file = MrcReader::open(&path).unwrap().read_volume().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let from_memory = MrcReader::from_bytes(bytes.clone(), "embedded.map").unwrap().read_volume().unwrap();
    assert_eq!(from_file, from_memory);
    let e = MrcReader::from_bytes(bytes[..2000].to_vec(), "embedded.map").unwrap_err();
    assert!(e.to_string().starts_with("embedded.map") && e.to_string().contains("truncated"), "{e}");
}
