//! PDB fixed-column format.

use std::fmt::Write;

use super::{Atom, AtomicModel};
use crate::error::{Error, Result};

/// Parses ATOM/HETATM records, grouped by MODEL/ENDMDL.
pub fn parse_pdb(text: &str) -> Result<AtomicModel> {
    let mut models: Vec<Vec<Atom>> = Vec::new();
    let mut current: Vec<Atom> = Vec::new();
    let mut in_model = false;
    for (k, line) in text.lines().enumerate() {
        let record = line.get(..6).unwrap_or(line).trim_end();
        match record {
            "ATOM" | "HETATM" => current.push(parse_atom_line(line).map_err(|e| e.at_line(k + 1))?),
            "MODEL" => {
                if !current.is_empty() {
                    models.push(std::mem::take(&mut current));
                }
                in_model = true;
            }
            "ENDMDL" => {
                models.push(std::mem::take(&mut current));
                in_model = false;
            }
            _ => {}
        }
    }
    if !current.is_empty() || (in_model && models.is_empty()) {
        models.push(current);
    }
    if models.iter().all(Vec::is_empty) {
        return Err(Error::missing("no ATOM or HETATM records"));
    }
    Ok(AtomicModel { models })
}

fn column(line: &str, from: usize, to: usize) -> &str {
    let end = to.min(line.len());
    if from >= end { "" } else { line.get(from..end).unwrap_or("").trim() }
}

fn parse_atom_line(line: &str) -> Result<Atom> {
    if !line.is_ascii() {
        return Err(Error::format("ATOM record has non-ASCII characters"));
    }
    let coord = |from, to, name: &str| -> Result<f64> {
        let text = column(line, from, to);
        text.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| Error::invalid(format!("'{text}' is not a coordinate")).in_field(name))
    };
    let optional = |from, to, default: f64, name: &str| -> Result<f64> {
        match column(line, from, to) {
            "" => Ok(default),
            text => {
                text.parse().map_err(|_| Error::invalid(format!("'{text}' is not a number")).in_field(name))
            }
        }
    };
    let name = column(line, 12, 16).to_string();
    let element = match column(line, 76, 78) {
        "" => name.chars().find(|c| c.is_ascii_alphabetic()).map(String::from).unwrap_or_default(),
        e => e.to_string(),
    };
    let residue_number = column(line, 22, 26);
    Ok(Atom {
        hetero: line.starts_with("HETATM"),
        serial: column(line, 6, 11).parse().unwrap_or(0), // hybrid-36 serials are not needed
        name,
        alt_loc: column(line, 16, 17).to_string(),
        residue_name: column(line, 17, 20).to_string(),
        chain: column(line, 21, 22).to_string(),
        residue_number: residue_number.parse().map_err(|_| {
            Error::invalid(format!("'{residue_number}' is not a residue number")).in_field("resSeq")
        })?,
        insertion_code: column(line, 26, 27).to_string(),
        position: [coord(30, 38, "x")?, coord(38, 46, "y")?, coord(46, 54, "z")?],
        occupancy: optional(54, 60, 1.0, "occupancy")?,
        b_factor: optional(60, 66, 0.0, "tempFactor")?,
        element,
    })
}

/// Formats models as PDB text; several models are wrapped in MODEL/ENDMDL.
pub fn format_pdb(models: &[Vec<Atom>]) -> String {
    let mut out = String::from("REMARK   1 written by cryomotion\n");
    let multi = models.len() > 1;
    for (m, atoms) in models.iter().enumerate() {
        if multi {
            let _ = writeln!(out, "MODEL     {:>4}", m + 1);
        }
        for (i, a) in atoms.iter().enumerate() {
            let serial = if a.serial > 0 { a.serial } else { i as i64 + 1 } % 100_000;
            // one-letter elements put names of up to 3 characters in columns 14-16
            let name = if a.name.len() < 4 && a.element.len() <= 1 {
                format!(" {:<3}", a.name)
            } else {
                format!("{:<4}", a.name)
            };
            let _ = writeln!(
                out,
                "{:<6}{:>5} {}{:1}{:>3} {:1}{:>4}{:1}   {:>8.3}{:>8.3}{:>8.3}{:>6.2}{:>6.2}          {:>2}",
                if a.hetero { "HETATM" } else { "ATOM" },
                serial,
                name,
                first(&a.alt_loc),
                a.residue_name.get(..a.residue_name.len().min(3)).unwrap_or(""),
                first(&a.chain),
                a.residue_number % 10_000,
                first(&a.insertion_code),
                a.position[0],
                a.position[1],
                a.position[2],
                a.occupancy,
                a.b_factor.clamp(-99.99, 999.99),
                a.element
            );
        }
        if multi {
            out.push_str("ENDMDL\n");
        }
    }
    out.push_str("END\n");
    out
}

fn first(s: &str) -> &str {
    s.get(..1.min(s.len())).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_columns_are_read() {
        let line = "ATOM      2  CA  MET A   1      26.981  53.977  40.085  1.00 40.83           C";
        let a = parse_atom_line(line).unwrap();
        assert_eq!((a.name.as_str(), a.residue_name.as_str(), a.chain.as_str()), ("CA", "MET", "A"));
        assert_eq!(a.position, [26.981, 53.977, 40.085]);
        assert_eq!((a.b_factor, a.element.as_str()), (40.83, "C"));
        // formatting reproduces the line
        assert_eq!(format_pdb(&[vec![a]]).lines().nth(1).unwrap(), line);
    }

    #[test]
    fn bad_coordinates_name_the_line_and_field() {
        let text = "ATOM      1  N   MET A   1      27.340  24.430   2.614\nATOM      2  CA  MET A   1      26.981  abc     40.085\n";
        let e = parse_pdb(text).unwrap_err();
        assert_eq!((e.line(), e.field()), (Some(2), Some("y")));
    }
}
