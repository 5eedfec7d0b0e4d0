//! mmCIF atoms, read through the STAR parser (`_atom_site` loop).

use super::{Atom, AtomicModel};
use crate::error::{Error, Result};
use crate::io::star::{Table, parse};

/// Parses the `_atom_site` loop of an mmCIF file, preferring author numbering (as in PDB).
pub fn parse_mmcif(text: &str) -> Result<AtomicModel> {
    let star = parse(text)?;
    let table = star
        .blocks
        .iter()
        .find_map(|b| b.table_with_column("atom_site.Cartn_x"))
        .ok_or_else(|| Error::missing("no _atom_site loop with Cartn_x").in_field("_atom_site"))?;
    let col = |names: &[&str]| names.iter().find_map(|n| table.column_index(&format!("atom_site.{n}")));
    let required = |name: &str| {
        col(&[name]).ok_or_else(|| {
            Error::missing(format!("no _atom_site.{name}")).in_field(format!("_atom_site.{name}"))
        })
    };
    let (x, y, z) = (required("Cartn_x")?, required("Cartn_y")?, required("Cartn_z")?);
    let c = AtomColumns {
        group: col(&["group_PDB"]),
        serial: col(&["id"]),
        name: col(&["auth_atom_id", "label_atom_id"]),
        alt: col(&["label_alt_id"]),
        residue: col(&["auth_comp_id", "label_comp_id"]),
        chain: col(&["auth_asym_id", "label_asym_id"]),
        number: col(&["auth_seq_id", "label_seq_id"]),
        insertion: col(&["pdbx_PDB_ins_code"]),
        occupancy: col(&["occupancy"]),
        b_factor: col(&["B_iso_or_equiv"]),
        element: col(&["type_symbol"]),
        model: col(&["pdbx_PDB_model_num"]),
    };
    let mut models: Vec<(String, Vec<Atom>)> = Vec::new();
    for row in 0..table.len() {
        let atom = atom_from_row(table, &c, row, [x, y, z]).map_err(|e| e.at_row(row + 1))?;
        let model = text_of(table, c.model, row).to_string();
        match models.last_mut() {
            Some((m, atoms)) if *m == model => atoms.push(atom),
            _ => models.push((model, vec![atom])),
        }
    }
    Ok(AtomicModel { models: models.into_iter().map(|(_, atoms)| atoms).collect() })
}

struct AtomColumns {
    group: Option<usize>,
    serial: Option<usize>,
    name: Option<usize>,
    alt: Option<usize>,
    residue: Option<usize>,
    chain: Option<usize>,
    number: Option<usize>,
    insertion: Option<usize>,
    occupancy: Option<usize>,
    b_factor: Option<usize>,
    element: Option<usize>,
    model: Option<usize>,
}

/// A cell's text, with CIF's null markers '.' and '?' as empty.
fn text_of(t: &Table, col: Option<usize>, row: usize) -> &str {
    match col.map(|c| t.get(row, c)) {
        Some("." | "?") | None => "",
        Some(v) => v,
    }
}

fn number_of(t: &Table, col: Option<usize>, row: usize, default: f64) -> Result<f64> {
    match text_of(t, col, row) {
        "" => Ok(default),
        v => v.parse().ok().filter(|x: &f64| x.is_finite()).ok_or_else(|| {
            let name = col.and_then(|c| t.column_names().nth(c)).unwrap_or("");
            Error::invalid(format!("'{v}' is not a number")).in_field(format!("_{name}"))
        }),
    }
}

fn atom_from_row(t: &Table, c: &AtomColumns, row: usize, xyz: [usize; 3]) -> Result<Atom> {
    let mut position = [0.0; 3];
    for (p, col) in position.iter_mut().zip(xyz) {
        *p = number_of(t, Some(col), row, f64::NAN)?;
        if p.is_nan() {
            return Err(Error::missing("coordinate is missing")
                .in_field(format!("_{}", t.column_names().nth(col).unwrap_or(""))));
        }
    }
    Ok(Atom {
        hetero: text_of(t, c.group, row) == "HETATM",
        serial: number_of(t, c.serial, row, 0.0)? as i64,
        name: text_of(t, c.name, row).trim_matches('"').to_string(),
        alt_loc: text_of(t, c.alt, row).to_string(),
        residue_name: text_of(t, c.residue, row).to_string(),
        chain: text_of(t, c.chain, row).to_string(),
        residue_number: number_of(t, c.number, row, 0.0)? as i64,
        insertion_code: text_of(t, c.insertion, row).to_string(),
        position,
        occupancy: number_of(t, c.occupancy, row, 1.0)?,
        b_factor: number_of(t, c.b_factor, row, 0.0)?,
        element: text_of(t, c.element, row).to_string(),
    })
}
