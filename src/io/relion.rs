//! RELION particle STAR files (3.0, 3.1 with data_optics, 5) ↔ the typed particle table.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::io::images::ImagePaths;
use crate::io::mrc::MrcReader;
use crate::io::star::{DataBlock, StarFile, Table};
use crate::particles::{
    ImageRef, OpticsGroup, Particle, ParticleCtf, ParticleTable, ParticleValue, TableSource,
};

/// Reads a particle STAR file of any RELION version into a typed table.
///
/// Where the file states no pixel size (no rlnImagePixelSize, rlnPixelSize, or detector pixel
/// size with magnification), the first image stack's MRC header gives it, if it has one.
pub fn read_particles_star(path: impl AsRef<Path>) -> Result<ParticleTable> {
    let path = path.as_ref();
    particles_from_star_file(StarFile::read(path)?, path)
}

/// [`read_particles_star`] for a file already parsed from `path` (pixel size and box size from
/// the image stacks where the file states none).
pub fn particles_from_star_file(file: StarFile, path: &Path) -> Result<ParticleTable> {
    match particles_from_star(file.clone(), path, None) {
        Err(e) if e.kind() == ErrorKind::MissingField && e.field() == Some("rlnImagePixelSize") => {
            match pixel_size_from_first_stack(&file, path) {
                Some(pixel_size) => particles_from_star(file, path, Some(pixel_size)),
                None => Err(e),
            }
        }
        other => other,
    }
    .map(fill_image_sizes)
    .map_err(|e| e.with_path(path))
}

/// Box sizes the file does not state (RELION 3.0), from each group's first stack, if found.
fn fill_image_sizes(mut table: ParticleTable) -> ParticleTable {
    for g in 0..table.optics_groups.len() {
        if table.optics_groups[g].image_size.is_some() {
            continue;
        }
        let Some(p) = table.particles.iter().find(|p| p.optics_group == g) else { continue };
        let Ok(stack) = ImagePaths::default().resolve(&table.path, &p.image.path) else { continue };
        if let Ok(reader) = MrcReader::open(stack) {
            table.optics_groups[g].image_size = Some(reader.image_shape()[0]);
        }
    }
    table
}

fn pixel_size_from_first_stack(file: &StarFile, path: &Path) -> Option<f64> {
    let table = particles_block(file).ok()?.table()?;
    let name = table.column("rlnImageName")?.next()?;
    let image = ImageRef::parse(name).ok()?;
    let stack = ImagePaths::default().resolve(path, &image.path).ok()?;
    let header = MrcReader::open(stack).ok()?.header().clone();
    header.has_voxel_size().then(|| header.voxel_size()[0] as f64)
}

/// Builds the typed table from a parsed STAR file (`path` is kept for image resolution);
/// `pixel_size` is used where the file states none.
pub fn particles_from_star(file: StarFile, path: &Path, pixel_size: Option<f64>) -> Result<ParticleTable> {
    let block = particles_block(&file)?;
    let table = block.table().expect("particles_block returns a block with a loop");
    let relion30 = file.block("optics").is_none();
    let mut optics_groups = match file.block("optics") {
        Some(optics) => read_optics_block(optics, pixel_size)?,
        None => Vec::new(),
    };
    let columns = Columns::find(table);
    let mut particles = Vec::with_capacity(table.len());
    let mut groups_30: HashMap<[u64; 4], usize> = HashMap::new();
    for row in 0..table.len() {
        let p = read_particle(table, &columns, row, relion30, pixel_size, &mut optics_groups, &mut groups_30)
            .map_err(|e| e.at_row(row + 1))?;
        particles.push(p);
    }
    Ok(ParticleTable {
        optics_groups,
        particles,
        has_poses: columns.rot.is_some() && columns.tilt.is_some(),
        has_ctf: columns.defocus_u.is_some(),
        path: path.to_path_buf(),
        source: TableSource::Star { particles_block: block.name.clone(), file, relion30 },
    })
}

fn particles_block(file: &StarFile) -> Result<&DataBlock> {
    if let Some(b) = file.block("particles") {
        return b.table().map(|_| b).ok_or_else(|| Error::missing("data_particles has no loop_"));
    }
    file.blocks.iter().find(|b| b.table().is_some_and(|t| t.has_column("rlnImageName"))).ok_or_else(|| {
        Error::missing("no particle table: no data_particles block and no loop with _rlnImageName")
            .in_field("rlnImageName")
    })
}

/// Column positions of the fields we type, found once per table.
struct Columns {
    image: Option<usize>,
    rot: Option<usize>,
    tilt: Option<usize>,
    psi: Option<usize>,
    origin_x_angst: Option<usize>,
    origin_y_angst: Option<usize>,
    origin_x_px: Option<usize>,
    origin_y_px: Option<usize>,
    defocus_u: Option<usize>,
    defocus_v: Option<usize>,
    defocus_angle: Option<usize>,
    phase_shift: Option<usize>,
    bfactor: Option<usize>,
    scale: Option<usize>,
    optics_group: Option<usize>,
    random_subset: Option<usize>,
}

impl Columns {
    fn find(t: &Table) -> Self {
        let c = |name| t.column_index(name);
        Columns {
            image: c("rlnImageName"),
            rot: c("rlnAngleRot"),
            tilt: c("rlnAngleTilt"),
            psi: c("rlnAnglePsi"),
            origin_x_angst: c("rlnOriginXAngst"),
            origin_y_angst: c("rlnOriginYAngst"),
            origin_x_px: c("rlnOriginX"),
            origin_y_px: c("rlnOriginY"),
            defocus_u: c("rlnDefocusU"),
            defocus_v: c("rlnDefocusV"),
            defocus_angle: c("rlnDefocusAngle"),
            phase_shift: c("rlnPhaseShift"),
            bfactor: c("rlnCtfBfactor"),
            scale: c("rlnCtfScalefactor"),
            optics_group: c("rlnOpticsGroup"),
            random_subset: c("rlnRandomSubset"),
        }
    }
}

/// A number from a table cell; the error names the column (the caller adds the row).
fn number(t: &Table, row: usize, col: usize) -> Result<f64> {
    let text = t.get(row, col);
    let name = t.column_names().nth(col).unwrap_or("");
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| Error::invalid(format!("'{text}' is not a number")).in_field(name))
}

fn number_or(t: &Table, row: usize, col: Option<usize>, default: f64) -> Result<f64> {
    col.map_or(Ok(default), |c| number(t, row, c))
}

fn column_number(t: &Table, row: usize, name: &str) -> Result<Option<f64>> {
    t.column_index(name).map(|c| number(t, row, c)).transpose()
}

/// Pixel size from rlnImagePixelSize, rlnPixelSize, or detector pixel size (µm) / magnification.
fn pixel_size(t: &Table, row: usize) -> Result<Option<f64>> {
    for name in ["rlnImagePixelSize", "rlnPixelSize"] {
        if let Some(v) = column_number(t, row, name)? {
            return positive(v, name).map(Some);
        }
    }
    match (column_number(t, row, "rlnDetectorPixelSize")?, column_number(t, row, "rlnMagnification")?) {
        (Some(det), Some(mag)) => {
            positive(det * 1e4 / positive(mag, "rlnMagnification")?, "rlnDetectorPixelSize").map(Some)
        }
        _ => Ok(None),
    }
}

fn positive(v: f64, name: &str) -> Result<f64> {
    if v > 0.0 { Ok(v) } else { Err(Error::invalid(format!("must be positive, found {v}")).in_field(name)) }
}

/// Optics values that may sit in the optics block (3.1+) or on each particle (3.0).
fn optics_from_row(
    t: &Table,
    row: usize,
    number: i32,
    fallback_pixel_size: Option<f64>,
) -> Result<OpticsGroup> {
    let pixel_size = pixel_size(t, row)?.or(fallback_pixel_size).ok_or_else(|| {
        Error::missing("no pixel size: none of rlnImagePixelSize, rlnPixelSize, or rlnDetectorPixelSize with rlnMagnification")
            .in_field("rlnImagePixelSize")
    })?;
    let image_size = match column_number(t, row, "rlnImageSize")? {
        Some(v) if v >= 1.0 && v.fract() == 0.0 => Some(v as usize),
        Some(v) => return Err(Error::invalid(format!("'{v}' is not a box size")).in_field("rlnImageSize")),
        None => None,
    };
    let name = t
        .column_index("rlnOpticsGroupName")
        .map(|c| t.get(row, c).to_string())
        .unwrap_or_else(|| format!("opticsGroup{number}"));
    Ok(OpticsGroup {
        number,
        name,
        pixel_size,
        image_size,
        // RELION's defaults where a column is absent (ctf.cpp)
        voltage_kv: column_number(t, row, "rlnVoltage")?.unwrap_or(200.0),
        spherical_aberration_mm: column_number(t, row, "rlnSphericalAberration")?.unwrap_or(0.0),
        amplitude_contrast: column_number(t, row, "rlnAmplitudeContrast")?.unwrap_or(0.0),
        ctf_premultiplied: column_number(t, row, "rlnCtfDataAreCtfPremultiplied")?.unwrap_or(0.0) != 0.0,
    })
}

fn read_optics_block(block: &DataBlock, fallback_pixel_size: Option<f64>) -> Result<Vec<OpticsGroup>> {
    let t = block.table().ok_or_else(|| Error::missing("data_optics has no loop_"))?;
    let col = t.column_index("rlnOpticsGroup").ok_or_else(|| {
        Error::missing("data_optics has no _rlnOpticsGroup column").in_field("rlnOpticsGroup")
    })?;
    let mut groups: Vec<OpticsGroup> = Vec::with_capacity(t.len());
    for row in 0..t.len() {
        let at = |e: Error| e.at_row(row + 1).in_field("data_optics");
        let number = integer(t, row, col).map_err(at)?;
        if groups.iter().any(|g| g.number == number) {
            return Err(at(Error::new(
                ErrorKind::DuplicateField,
                format!("optics group {number} is defined twice"),
            )));
        }
        groups.push(optics_from_row(t, row, number, fallback_pixel_size).map_err(at)?);
    }
    Ok(groups)
}

fn integer(t: &Table, row: usize, col: usize) -> Result<i32> {
    let v = number(t, row, col)?;
    if v.fract() != 0.0 || v.abs() > i32::MAX as f64 {
        let name = t.column_names().nth(col).unwrap_or("");
        return Err(Error::invalid(format!("'{}' is not an integer", t.get(row, col))).in_field(name));
    }
    Ok(v as i32)
}

fn read_particle(
    t: &Table,
    c: &Columns,
    row: usize,
    relion30: bool,
    fallback_pixel_size: Option<f64>,
    optics_groups: &mut Vec<OpticsGroup>,
    groups_30: &mut HashMap<[u64; 4], usize>,
) -> Result<Particle> {
    let image_col =
        c.image.ok_or_else(|| Error::missing("no _rlnImageName column").in_field("rlnImageName"))?;
    let image =
        ImageRef::parse(t.get(row, image_col)).map_err(|m| Error::invalid(m).in_field("rlnImageName"))?;
    let optics_group = if relion30 {
        let optics = optics_from_row(t, row, 0, fallback_pixel_size)?;
        let key =
            [optics.pixel_size, optics.voltage_kv, optics.spherical_aberration_mm, optics.amplitude_contrast]
                .map(f64::to_bits);
        *groups_30.entry(key).or_insert_with(|| {
            let number = optics_groups.len() as i32 + 1;
            optics_groups.push(OpticsGroup { number, name: format!("opticsGroup{number}"), ..optics });
            optics_groups.len() - 1
        })
    } else {
        match c.optics_group {
            Some(col) => {
                let number = integer(t, row, col)?;
                optics_groups.iter().position(|g| g.number == number).ok_or_else(|| {
                    Error::invalid(format!("optics group {number} is not defined in data_optics"))
                        .in_field("rlnOpticsGroup")
                })?
            }
            None if optics_groups.len() == 1 => 0,
            None => {
                return Err(Error::missing("no _rlnOpticsGroup column and several optics groups")
                    .in_field("rlnOpticsGroup"));
            }
        }
    };
    let pixel = optics_groups[optics_group].pixel_size;
    let origin_angstrom = match (c.origin_x_angst, c.origin_y_angst, c.origin_x_px, c.origin_y_px) {
        (Some(x), Some(y), _, _) => [number(t, row, x)?, number(t, row, y)?],
        (_, _, Some(x), Some(y)) => [number(t, row, x)? * pixel, number(t, row, y)? * pixel],
        _ => [0.0, 0.0],
    };
    let defocus_u = number_or(t, row, c.defocus_u, 0.0)?;
    let ctf = ParticleCtf {
        defocus_u_angstrom: defocus_u,
        defocus_v_angstrom: number_or(t, row, c.defocus_v, defocus_u)?,
        defocus_angle_deg: number_or(t, row, c.defocus_angle, 0.0)?,
        phase_shift_deg: number_or(t, row, c.phase_shift, 0.0)?,
        bfactor: number_or(t, row, c.bfactor, 0.0)?,
        scale: number_or(t, row, c.scale, 1.0)?,
    };
    let random_subset = match c.random_subset {
        Some(col) => match integer(t, row, col)? {
            s @ (1 | 2) => Some(s as u8),
            s => {
                return Err(
                    Error::invalid(format!("half set must be 1 or 2, found {s}")).in_field("rlnRandomSubset")
                );
            }
        },
        None => None,
    };
    Ok(Particle {
        image,
        euler_deg: [
            number_or(t, row, c.rot, 0.0)?,
            number_or(t, row, c.tilt, 0.0)?,
            number_or(t, row, c.psi, 0.0)?,
        ],
        origin_angstrom,
        ctf,
        optics_group,
        random_subset,
    })
}

/// Columns the typed table writes, and how each is read off a particle.
const TYPED_COLUMNS: &[(&str, ParticleValue)] = &[
    ("rlnAngleRot", |p| p.euler_deg[0]),
    ("rlnAngleTilt", |p| p.euler_deg[1]),
    ("rlnAnglePsi", |p| p.euler_deg[2]),
    ("rlnOriginXAngst", |p| p.origin_angstrom[0]),
    ("rlnOriginYAngst", |p| p.origin_angstrom[1]),
    ("rlnDefocusU", |p| p.ctf.defocus_u_angstrom),
    ("rlnDefocusV", |p| p.ctf.defocus_v_angstrom),
    ("rlnDefocusAngle", |p| p.ctf.defocus_angle_deg),
    ("rlnPhaseShift", |p| p.ctf.phase_shift_deg),
    ("rlnCtfBfactor", |p| p.ctf.bfactor),
    ("rlnCtfScalefactor", |p| p.ctf.scale),
];

/// Columns of RELION 3.0 particles that move into the optics block in 3.1.
const OPTICS_COLUMNS_30: &[&str] = &[
    "rlnVoltage",
    "rlnSphericalAberration",
    "rlnAmplitudeContrast",
    "rlnMagnification",
    "rlnDetectorPixelSize",
    "rlnImagePixelSize",
    "rlnPixelSize",
];

/// The particles `rows` (all when `None`) as a RELION 3.1+ STAR file.
///
/// Every column of the source is kept; typed values are written where they differ from the
/// source (or where the source had no such column), so an unmodified table writes back its
/// original text. RELION 3.0 input gains an optics block and origins in Å.
pub fn particles_to_star(table: &ParticleTable, rows: Option<&[usize]>) -> Result<StarFile> {
    let (mut out, block_name, relion30) = match &table.source {
        TableSource::Star { file, particles_block, relion30 } => {
            (file.clone(), particles_block.clone(), *relion30)
        }
        TableSource::Cs(_) => (StarFile::default(), "particles".to_string(), true),
    };
    let all: Vec<usize>;
    let selected = rows;
    let rows = match rows {
        Some(r) => r,
        None => {
            all = (0..table.len()).collect();
            &all
        }
    };
    let mut t = match out.block_mut(&block_name).and_then(DataBlock::table_mut) {
        Some(source) => match selected {
            Some(r) => source.select_rows(r),
            None => std::mem::take(source),
        },
        None => {
            let mut t = Table::new::<&str>(&[])?;
            for _ in rows {
                t.push_row::<&str>(&[])?;
            }
            t.set_column("rlnImageName", rows.iter().map(|&r| table.particles[r].image.to_relion()))?;
            t
        }
    };
    let particles: Vec<&Particle> = rows.iter().map(|&r| &table.particles[r]).collect();
    if relion30 {
        convert_30_columns(&mut t, &particles, table)?;
    }
    for (name, get) in TYPED_COLUMNS {
        let is_pose = name.starts_with("rlnAngle") || name.starts_with("rlnOrigin");
        if !t.has_column(name) && ((is_pose && !table.has_poses) || (!is_pose && !table.has_ctf)) {
            continue;
        }
        update_column(&mut t, name, particles.iter().map(|p| get(p)))?;
    }
    if particles.iter().any(|p| p.random_subset.is_some()) {
        let subset = |p: &Particle| p.random_subset.map_or(0, i64::from);
        let unchanged = t.column("rlnRandomSubset").is_some_and(|mut column| {
            particles.iter().all(|p| column.next().and_then(|v| v.trim().parse().ok()) == Some(subset(p)))
        });
        if !unchanged {
            t.set_column("rlnRandomSubset", particles.iter().map(|p| subset(p).to_string()))?;
        }
    }
    if relion30 {
        out.blocks.clear();
        let mut optics = DataBlock::with_table("optics", optics_table(&table.optics_groups)?);
        optics.comments = vec!["# version 30001".into()];
        out.blocks.push(optics);
        let mut particles_block = DataBlock::with_table("particles", t);
        particles_block.comments = vec!["# version 30001".into()];
        out.blocks.push(particles_block);
    } else {
        let block = out.block_mut(&block_name).expect("block exists");
        *block.table_mut().expect("particle block has a loop") = t;
    }
    Ok(out)
}

/// Writes the particles `rows` (all when `None`) as a STAR file, atomically.
pub fn write_particles_star(
    path: impl AsRef<Path>,
    table: &ParticleTable,
    rows: Option<&[usize]>,
) -> Result<()> {
    particles_to_star(table, rows)?.write(path)
}

fn convert_30_columns(t: &mut Table, particles: &[&Particle], table: &ParticleTable) -> Result<()> {
    for name in OPTICS_COLUMNS_30.iter().chain(&["rlnOriginX", "rlnOriginY"]) {
        t.remove_column(name);
    }
    let groups = particles.iter().map(|p| table.optics_groups[p.optics_group].number.to_string());
    t.set_column("rlnOpticsGroup", groups)
}

/// The `data_optics` loop of RELION 3.1+ for these groups (box sizes only when all are known).
pub fn optics_table(groups: &[OpticsGroup]) -> Result<Table> {
    let mut names = vec![
        "rlnOpticsGroup",
        "rlnOpticsGroupName",
        "rlnVoltage",
        "rlnSphericalAberration",
        "rlnAmplitudeContrast",
        "rlnImagePixelSize",
        "rlnCtfDataAreCtfPremultiplied",
    ];
    // box sizes go in only when every group's is known (the stacks were found)
    let sizes: Option<Vec<usize>> = groups.iter().map(|g| g.image_size).collect();
    if sizes.is_some() {
        names.extend(["rlnImageSize", "rlnImageDimensionality"]);
    }
    let mut t = Table::new(&names)?;
    for (k, g) in groups.iter().enumerate() {
        let mut row = vec![
            g.number.to_string(),
            g.name.clone(),
            format_number(g.voltage_kv),
            format_number(g.spherical_aberration_mm),
            format_number(g.amplitude_contrast),
            format_number(g.pixel_size),
            (g.ctf_premultiplied as u8).to_string(),
        ];
        if let Some(sizes) = &sizes {
            row.extend([sizes[k].to_string(), "2".into()]);
        }
        t.push_row(&row)?;
    }
    Ok(t)
}

/// Replaces cells whose number differs from `values`, keeping the original text elsewhere.
fn update_column(t: &mut Table, name: &str, values: impl Iterator<Item = f64>) -> Result<()> {
    let values: Vec<f64> = values.collect();
    let col = t.column_index(name);
    let same = |row: usize, v: f64| col.is_some_and(|c| t.get(row, c).trim().parse::<f64>().ok() == Some(v));
    if col.is_some() && values.iter().enumerate().all(|(row, &v)| same(row, v)) {
        return Ok(()); // nothing changed: keep the original text
    }
    let new: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(row, &v)| match col {
            Some(c) if same(row, v) => t.get(row, c).to_string(),
            _ => format_number(v),
        })
        .collect();
    t.set_column(name, new)
}

/// A number as RELION writes it: 6 decimals, shortest exact form for integers.
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.1}") } else { format!("{v:.6}") }
}
