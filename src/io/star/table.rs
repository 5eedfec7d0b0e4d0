//! A STAR loop as a column-major table of strings, compact enough for 10⁶ particles.

use crate::error::{Error, Result};

/// One column: its values packed into one string with end offsets.
#[derive(Clone, Debug, Default, PartialEq)]
struct Column {
    name: String,
    text: String,
    ends: Vec<u32>,
}

impl Column {
    fn get(&self, row: usize) -> &str {
        let start = if row == 0 { 0 } else { self.ends[row - 1] as usize };
        &self.text[start..self.ends[row] as usize]
    }

    fn push(&mut self, value: &str) -> Result<()> {
        self.text.push_str(value);
        let end = u32::try_from(self.text.len()).map_err(|_| {
            Error::unsupported(format!("column '{}' holds more than 4 GiB of text", self.name))
        })?;
        self.ends.push(end);
        Ok(())
    }
}

/// A STAR loop: named columns of string values, all of equal length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    columns: Vec<Column>,
    rows: usize,
}

impl Table {
    /// An empty table with these column names (without the leading underscore).
    ///
    /// # Errors
    /// A name given twice is [`crate::ErrorKind::DuplicateField`].
    pub fn new<S: AsRef<str>>(names: &[S]) -> Result<Self> {
        let mut table = Table::default();
        for name in names {
            table.add_empty_column(name.as_ref())?;
        }
        Ok(table)
    }

    fn add_empty_column(&mut self, name: &str) -> Result<()> {
        if self.column_index(name).is_some() {
            return Err(Error::new(
                crate::ErrorKind::DuplicateField,
                format!("column _{name} appears twice"),
            )
            .in_field(name));
        }
        self.columns.push(Column { name: name.to_string(), ..Default::default() });
        Ok(())
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Column names, in order.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }

    /// Number of columns.
    pub fn column_count(&self) -> usize {
        self.columns.len()
    }

    /// Position of a column.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Whether a column exists.
    pub fn has_column(&self, name: &str) -> bool {
        self.column_index(name).is_some()
    }

    /// Value at `row` of column number `col`.
    ///
    /// # Panics
    /// If `row` or `col` is out of range.
    pub fn get(&self, row: usize, col: usize) -> &str {
        self.columns[col].get(row)
    }

    /// The values of a column, if it exists.
    pub fn column(&self, name: &str) -> Option<impl Iterator<Item = &str>> {
        let col = &self.columns[self.column_index(name)?];
        Some((0..self.rows).map(move |r| col.get(r)))
    }

    /// Appends one row.
    ///
    /// # Panics
    /// If `values` does not have one value per column.
    pub fn push_row<S: AsRef<str>>(&mut self, values: &[S]) -> Result<()> {
        assert_eq!(values.len(), self.columns.len(), "one value per column");
        for (col, v) in self.columns.iter_mut().zip(values) {
            col.push(v.as_ref())?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Appends a value to column `col` while filling row-major data (the parser's path).
    pub(crate) fn push_value(&mut self, col: usize, value: &str) -> Result<()> {
        self.columns[col].push(value)?;
        if col + 1 == self.columns.len() {
            self.rows += 1;
        }
        Ok(())
    }

    /// Replaces a column's values, or appends the column if it does not exist.
    ///
    /// # Panics
    /// If `values` does not yield one value per row.
    pub fn set_column<I, S>(&mut self, name: &str, values: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut column = Column { name: name.to_string(), ..Default::default() };
        for v in values {
            column.push(v.as_ref())?;
        }
        assert_eq!(column.ends.len(), self.rows, "one value per row for column {name}");
        match self.column_index(name) {
            Some(i) => self.columns[i] = column,
            None => self.columns.push(column),
        }
        Ok(())
    }

    /// Removes a column if it exists.
    pub fn remove_column(&mut self, name: &str) {
        if let Some(i) = self.column_index(name) {
            self.columns.remove(i);
        }
    }

    /// A table with the given rows, in the given order, and every column.
    ///
    /// # Panics
    /// If a row index is out of range.
    pub fn select_rows(&self, rows: &[usize]) -> Table {
        let columns = self
            .columns
            .iter()
            .map(|c| {
                let mut out = Column { name: c.name.clone(), ..Default::default() };
                for &r in rows {
                    out.push(c.get(r)).expect("a subset is never larger than its source");
                }
                out
            })
            .collect();
        Table { columns, rows: rows.len() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_columns_and_subsets() {
        let mut t = Table::new(&["a", "b"]).unwrap();
        t.push_row(&["1", "x"]).unwrap();
        t.push_row(&["2", "y"]).unwrap();
        t.push_row(&["3", "z"]).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(1, 1), "y");
        let s = t.select_rows(&[2, 0]);
        assert_eq!(s.column("a").unwrap().collect::<Vec<_>>(), ["3", "1"]);
        let mut s = s;
        s.set_column("c", ["p", "q"]).unwrap();
        s.set_column("a", ["9", "8"]).unwrap();
        assert_eq!(s.column_names().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(s.get(0, 0), "9");
        assert_eq!(Table::new(&["a", "a"]).unwrap_err().kind(), crate::ErrorKind::DuplicateField);
    }
}
