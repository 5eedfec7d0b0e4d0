//! Writing STAR text: aligned columns, values quoted only where the syntax needs it.

use std::fmt::Write;

use super::{Item, StarFile, Table};

pub(super) fn to_string(star: &StarFile) -> String {
    let mut out = String::new();
    for block in &star.blocks {
        out.push('\n');
        for c in &block.comments {
            out.push_str(c);
            out.push('\n');
        }
        if !block.comments.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "data_{}\n", block.name);
        for item in &block.items {
            match item {
                Item::Pair { tag, value } => {
                    let _ = writeln!(out, "_{tag:<40} {}", quote(value));
                }
                Item::Loop(table) => write_table(&mut out, table),
            }
        }
        out.push('\n');
    }
    out
}

fn write_table(out: &mut String, table: &Table) {
    out.push_str("loop_ \n");
    for (k, name) in table.column_names().enumerate() {
        let _ = writeln!(out, "_{name} #{} ", k + 1);
    }
    let ncols = table.column_count();
    let widths: Vec<usize> = (0..ncols)
        .map(|c| (0..table.len()).map(|r| quote(table.get(r, c)).chars().count()).max().unwrap_or(0))
        .collect();
    for r in 0..table.len() {
        for (c, &width) in widths.iter().enumerate() {
            let v = quote(table.get(r, c));
            if v.contains('\n') {
                out.push('\n');
                out.push_str(&v);
                out.push('\n');
            } else {
                // right-aligned like RELION; counted in characters, as the width was
                let pad = width.saturating_sub(v.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(&v);
                out.push(' ');
            }
        }
        out.push('\n');
    }
    out.push('\n');
}

/// The value as a STAR token: bare where possible, quoted or as a text field where not.
fn quote(value: &str) -> std::borrow::Cow<'_, str> {
    let needs = value.is_empty()
        || value.chars().any(char::is_whitespace)
        || value.starts_with(['_', '#', '\'', '"', ';', '$'])
        || ["data_", "save_", "loop_", "stop_", "global_"]
            .iter()
            .any(|k| value.get(..k.len()).is_some_and(|p| p.eq_ignore_ascii_case(k)));
    if !needs {
        return value.into();
    }
    if value.contains('\n') {
        return format!(";{value}\n;").into();
    }
    if !value.contains("\" ") && !value.ends_with('"') {
        format!("\"{value}\"").into()
    } else if !value.contains("' ") && !value.ends_with('\'') {
        format!("'{value}'").into()
    } else {
        format!(";{value}\n;").into()
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    #[test]
    fn awkward_values_survive_a_round_trip() {
        let values = ["", "two words", "_underscore", "#hash", "data_x", "it's \"q\" ", "a\nb", "plain"];
        let mut table = Table::new(&["v"]).unwrap();
        for v in values {
            table.push_row(&[v]).unwrap();
        }
        let star = StarFile { blocks: vec![super::super::DataBlock::with_table("t", table)] };
        let back = parse(&star.to_string()).unwrap();
        let got: Vec<&str> = back.blocks[0].table().unwrap().column("v").unwrap().collect();
        assert_eq!(got, values);
    }
}
