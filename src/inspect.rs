//! What a file holds, as a human-readable report (`cryomotion info`).

use std::fmt::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::atoms::read_atoms;
use crate::io::images::{ImagePaths, ParticleImages};
use crate::io::mrc::{MrcReader, Stats};
use crate::io::npy::NpyArray;
use crate::io::pickle::{PyValue, read_pickle};
use crate::io::star::{Item, StarFile, Table};
use crate::io::{cs, relion};
use crate::particles::{ParticleTable, ParticleValue};

/// The kinds of file `describe` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// MRC map or stack.
    Mrc,
    /// STAR metadata.
    Star,
    /// cryoSPARC particles (.cs) or any NumPy array (.npy).
    Npy,
    /// PDB or mmCIF atoms.
    Atoms,
    /// A Python pickle of NumPy arrays (cryoDRGN poses and CTF).
    Pickle,
    /// A text table of numbers (.dat, .txt, .csv).
    Text,
}

/// The kind of a file from its extension, or from its first bytes.
pub fn file_kind(path: &Path) -> Result<FileKind> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    Ok(match ext.as_str() {
        "mrc" | "mrcs" | "map" | "st" | "rec" | "ccp4" => FileKind::Mrc,
        "star" => FileKind::Star,
        "cs" | "npy" => FileKind::Npy,
        "pdb" | "ent" | "cif" | "mmcif" => FileKind::Atoms,
        "pkl" | "pickle" => FileKind::Pickle,
        "dat" | "txt" | "csv" => FileKind::Text,
        _ => {
            let mut head = [0u8; 1024];
            let n = std::fs::File::open(path)
                .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
                .map_err(|e| Error::io(e, path))?;
            if head[..n].starts_with(b"\x93NUMPY") {
                FileKind::Npy
            } else if head[..n].starts_with(&[0x80]) {
                FileKind::Pickle
            } else if n == 1024 && &head[208..211] == b"MAP" {
                FileKind::Mrc
            } else if String::from_utf8_lossy(&head[..n]).contains("data_") {
                FileKind::Star
            } else {
                return Err(Error::unsupported("unknown file type (expected .mrc, .mrcs, .map, .star, .cs, .npy, .pkl, .pdb, .cif or a text table)").with_path(path));
            }
        }
    })
}

/// A report of what `path` holds; particle images are looked for as `images` says.
pub fn describe(path: &Path, images: &ImagePaths) -> Result<String> {
    match file_kind(path)? {
        FileKind::Mrc => describe_mrc(path),
        FileKind::Star => describe_star(path, images),
        FileKind::Npy => describe_npy(path, images),
        FileKind::Atoms => describe_atoms(path),
        FileKind::Pickle => describe_pickle(path),
        FileKind::Text => describe_text(path),
    }
}

fn describe_mrc(path: &Path) -> Result<String> {
    let reader = MrcReader::open(path)?;
    let h = reader.header();
    let mut out = String::new();
    let [nx, ny, nz] = h.dims_xyz();
    let mrcs = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("mrcs"));
    let kind = if h.is_stack() || mrcs {
        format!("image stack of {} images", reader.image_count())
    } else {
        "volume".to_string()
    };
    let _ = writeln!(out, "{}: MRC {kind}", path.display());
    let _ = writeln!(out, "  size (x, y, z)     {nx} × {ny} × {nz}");
    let _ = writeln!(out, "  mode               {} ({})", h.mode.number(), h.mode.name());
    let vs = h.voxel_size();
    let unset = if h.has_voxel_size() { "" } else { " (cell unset: assumed)" };
    let _ = writeln!(out, "  voxel size         {:.4} × {:.4} × {:.4} Å{unset}", vs[0], vs[1], vs[2]);
    let _ =
        writeln!(out, "  origin             {:.3}, {:.3}, {:.3} Å", h.origin[0], h.origin[1], h.origin[2]);
    let _ = writeln!(out, "  start (n[xyz]start) {}, {}, {}", h.start[0], h.start[1], h.start[2]);
    let _ = writeln!(
        out,
        "  axis order         mapc/mapr/maps = {}, {}, {}",
        h.axis_order[0], h.axis_order[1], h.axis_order[2]
    );
    let _ = writeln!(out, "  space group        {}", h.ispg);
    let exttyp = String::from_utf8_lossy(&h.exttyp).trim_matches(char::from(0)).to_string();
    let _ = writeln!(
        out,
        "  extended header    {} bytes{}",
        h.nsymbt,
        if exttyp.is_empty() { String::new() } else { format!(" ({exttyp})") }
    );
    let _ =
        writeln!(out, "  byte order         {}", if h.big_endian { "big-endian" } else { "little-endian" });
    let _ = writeln!(
        out,
        "  header statistics  min {:.4}  max {:.4}  mean {:.4}  rms {:.4}",
        h.dmin, h.dmax, h.dmean, h.rms
    );
    let stats = data_stats(&reader)?;
    let _ = writeln!(
        out,
        "  data statistics    min {:.4}  max {:.4}  mean {:.4}  rms {:.4}",
        stats.min,
        stats.max,
        stats.mean(),
        stats.rms_deviation()
    );
    for label in &h.labels {
        let _ = writeln!(out, "  label              {label}");
    }
    Ok(out)
}

/// Statistics over the data, one section at a time (bounded memory for large stacks).
fn data_stats(reader: &MrcReader) -> Result<Stats> {
    let mut stats = Stats::default();
    if reader.header().axis_order[2] != 3 {
        stats.add(&reader.read_volume()?.data);
        return Ok(stats);
    }
    let [nx, ny] = reader.image_shape();
    let mut image = vec![0.0f32; nx * ny];
    let mut scratch = Vec::new();
    for k in 0..reader.image_count() {
        reader.read_image_with_scratch(k, &mut image, &mut scratch)?;
        stats.add(&image);
    }
    Ok(stats)
}

fn describe_star(path: &Path, images: &ImagePaths) -> Result<String> {
    let file = StarFile::read(path)?;
    let particles = relion::particles_from_star_file(file.clone(), path);
    let mut out = String::new();
    let _ = writeln!(out, "{}: STAR file with {} data blocks", path.display(), file.blocks.len());
    for block in &file.blocks {
        let _ = writeln!(out, "  data_{}", block.name);
        for item in &block.items {
            match item {
                Item::Pair { tag, value } => {
                    let _ = writeln!(out, "    _{tag:<40} {value}");
                }
                Item::Loop(table) => describe_table(&mut out, table),
            }
        }
    }
    match particles {
        Ok(table) => describe_particles(&mut out, &table, images),
        Err(e) => {
            let _ = writeln!(out, "  not a particle table: {}", e.message());
        }
    }
    Ok(out)
}

fn describe_table(out: &mut String, table: &Table) {
    let _ = writeln!(out, "    loop: {} rows × {} columns", table.len(), table.column_count());
    for (c, name) in table.column_names().enumerate() {
        let mut range: Option<(f64, f64)> = Some((f64::INFINITY, f64::NEG_INFINITY));
        for r in 0..table.len() {
            match (table.get(r, c).parse::<f64>(), range.as_mut()) {
                (Ok(v), Some((lo, hi))) => {
                    *lo = lo.min(v);
                    *hi = hi.max(v);
                }
                _ => {
                    range = None;
                    break;
                }
            }
        }
        let summary = match range {
            Some((lo, hi)) if !table.is_empty() => format!("{} .. {}", short(lo), short(hi)),
            _ if !table.is_empty() => format!("e.g. {}", table.get(0, c)),
            _ => String::new(),
        };
        let _ = writeln!(out, "      _{name:<34} {summary}");
    }
}

fn short(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 { format!("{v:.0}") } else { format!("{v:.4}") }
}

/// Up to 5 decimals, trailing zeros dropped (f32 fields print as written).
fn trimmed(v: f64) -> String {
    let s = format!("{v:.5}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn describe_particles(out: &mut String, table: &ParticleTable, paths: &ImagePaths) {
    let _ = writeln!(out, "  particles          {}", table.len());
    let _ = writeln!(out, "  poses              {}", if table.has_poses { "yes" } else { "no" });
    let _ = writeln!(out, "  CTF                {}", if table.has_ctf { "yes" } else { "no" });
    let stacks: std::collections::BTreeSet<&str> =
        table.particles.iter().map(|p| p.image.path.as_str()).collect();
    let _ = writeln!(out, "  image stacks       {}", stacks.len());
    match ParticleImages::open(table, paths) {
        Ok(images) => {
            let [nx, ny] = images.shape();
            let _ = writeln!(out, "  images             all found, {nx} × {ny} px");
        }
        Err(e) => {
            let _ = writeln!(out, "  images             not readable: {}", e.message());
        }
    }
    let halves = [1u8, 2].map(|s| table.particles.iter().filter(|p| p.random_subset == Some(s)).count());
    if halves[0] + halves[1] > 0 {
        let _ = writeln!(out, "  half sets          {} / {}", halves[0], halves[1]);
    }
    let _ = writeln!(out, "  optics groups      {}", table.optics_groups.len());
    for (g, optics) in table.optics_groups.iter().enumerate() {
        let count = table.particles.iter().filter(|p| p.optics_group == g).count();
        let _ = writeln!(
            out,
            "    {:>3} {:<16} {:>7} particles  {} Å/px  box {}  {} kV  Cs {} mm  Q {}{}",
            optics.number,
            optics.name,
            count,
            trimmed(optics.pixel_size),
            optics.image_size.map_or("?".into(), |s| s.to_string()),
            trimmed(optics.voltage_kv),
            trimmed(optics.spherical_aberration_mm),
            trimmed(optics.amplitude_contrast),
            if optics.ctf_premultiplied { "  CTF-premultiplied" } else { "" }
        );
    }
    let ranges: [(&str, ParticleValue); 7] = [
        ("rot (deg)", |p| p.euler_deg[0]),
        ("tilt (deg)", |p| p.euler_deg[1]),
        ("psi (deg)", |p| p.euler_deg[2]),
        ("origin x (Å)", |p| p.origin_angstrom[0]),
        ("origin y (Å)", |p| p.origin_angstrom[1]),
        ("defocus U (Å)", |p| p.ctf.defocus_u_angstrom),
        ("defocus V (Å)", |p| p.ctf.defocus_v_angstrom),
    ];
    for (name, get) in ranges {
        let (lo, hi) = table
            .particles
            .iter()
            .map(get)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo <= hi {
            let _ = writeln!(out, "  {name:<18} {lo:.2} .. {hi:.2}");
        }
    }
}

fn describe_npy(path: &Path, images: &ImagePaths) -> Result<String> {
    let array = NpyArray::read(path)?;
    let mut out = String::new();
    let structured = !(array.fields.len() == 1 && array.fields[0].name.is_empty());
    let _ = writeln!(
        out,
        "{}: NumPy {} array, shape {:?}, {} records",
        path.display(),
        if structured { "structured" } else { "plain" },
        array.shape,
        array.len()
    );
    if structured {
        for f in &array.fields {
            let ty = f.scalar.name();
            let shape = if f.shape.is_empty() { String::new() } else { format!("{:?}", f.shape) };
            let _ = writeln!(out, "    {:<32} {ty}{shape}", f.name);
        }
        match cs::particles_from_cs(array, path) {
            Ok(table) => describe_particles(&mut out, &table, images),
            Err(e) => {
                let _ = writeln!(out, "  not a cryoSPARC particle file: {}", e.message());
            }
        }
    }
    Ok(out)
}

fn describe_atoms(path: &Path) -> Result<String> {
    let model = read_atoms(path)?;
    let atoms = model.atoms();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: atomic model, {} model(s), {} atoms in the first",
        path.display(),
        model.models.len(),
        atoms.len()
    );
    let mut chains: Vec<(&str, std::collections::BTreeSet<(i64, &str)>)> = Vec::new();
    for a in atoms {
        match chains.iter_mut().find(|(c, _)| *c == a.chain) {
            Some((_, residues)) => {
                residues.insert((a.residue_number, a.insertion_code.as_str()));
            }
            None => chains.push((&a.chain, [(a.residue_number, a.insertion_code.as_str())].into())),
        }
    }
    for (chain, residues) in &chains {
        let _ = writeln!(
            out,
            "  chain {:<4} {} residues",
            if chain.is_empty() { "-" } else { chain },
            residues.len()
        );
    }
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    let mut centre = [0.0; 3];
    for a in atoms {
        for k in 0..3 {
            lo[k] = lo[k].min(a.position[k]);
            hi[k] = hi[k].max(a.position[k]);
            centre[k] += a.position[k] / atoms.len() as f64;
        }
    }
    let _ = writeln!(
        out,
        "  bounding box       x {:.2} .. {:.2}, y {:.2} .. {:.2}, z {:.2} .. {:.2} Å",
        lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]
    );
    let _ = writeln!(out, "  centre             {:.2}, {:.2}, {:.2} Å", centre[0], centre[1], centre[2]);
    let ca = atoms.iter().filter(|a| a.name == "CA" || a.name == "P").count();
    let _ = writeln!(out, "  CA/P atoms         {ca}");
    Ok(out)
}

fn describe_pickle(path: &Path) -> Result<String> {
    let value = read_pickle(path)?;
    let mut out = format!("{}: Python pickle (read without running code)\n", path.display());
    describe_py(&mut out, &value, 1);
    Ok(out)
}

fn describe_py(out: &mut String, value: &PyValue, depth: usize) {
    let indent = "  ".repeat(depth);
    match value {
        PyValue::Array(a) => {
            let values = a.values().unwrap_or_default();
            let (lo, hi) =
                values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
            let range = if values.is_empty() {
                String::new()
            } else {
                format!(", values {} .. {}", short(lo), short(hi))
            };
            let _ = writeln!(
                out,
                "{indent}NumPy array, shape {:?}, {}{range}",
                a.shape,
                a.fields[0].scalar.name()
            );
        }
        PyValue::Tuple(items) | PyValue::List(items) => {
            let kind = if matches!(value, PyValue::Tuple(_)) { "tuple" } else { "list" };
            let _ = writeln!(out, "{indent}{kind} of {} items", items.len());
            for item in items.iter().take(20) {
                describe_py(out, item, depth + 1);
            }
        }
        other => {
            let _ = writeln!(out, "{indent}{other:?}");
        }
    }
}

/// Whitespace- or comma-separated numbers: rows, columns and the range of each column.
fn describe_text(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(e, path))?;
    let mut columns: Vec<(f64, f64)> = Vec::new();
    let mut rows = 0;
    for (k, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> =
            line.split(|c: char| c.is_whitespace() || c == ',').filter(|f| !f.is_empty()).collect();
        if rows == 0 {
            columns = vec![(f64::INFINITY, f64::NEG_INFINITY); fields.len()];
        } else if fields.len() != columns.len() {
            return Err(Error::format(format!(
                "{} values where the first row has {}",
                fields.len(),
                columns.len()
            ))
            .at_line(k + 1)
            .with_path(path));
        }
        for (c, f) in fields.iter().enumerate() {
            let v: f64 = f.parse().map_err(|_| {
                Error::invalid(format!("'{f}' is not a number"))
                    .at_line(k + 1)
                    .in_field(format!("column {}", c + 1))
                    .with_path(path)
            })?;
            columns[c] = (columns[c].0.min(v), columns[c].1.max(v));
        }
        rows += 1;
    }
    let mut out = format!("{}: text table, {rows} rows × {} columns\n", path.display(), columns.len());
    for (c, (lo, hi)) in columns.iter().enumerate().take(40) {
        let _ = writeln!(out, "  column {:<4} {} .. {}", c + 1, short(*lo), short(*hi));
    }
    if columns.len() > 40 {
        let _ = writeln!(out, "  ... {} more columns", columns.len() - 40);
    }
    Ok(out)
}
