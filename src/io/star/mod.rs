//! STAR files (RELION 3.0, 3.1, 5) and the CIF syntax they share with mmCIF.
//!
//! A file is a list of named data blocks; a block holds key–value pairs and loops (tables).
//! Tags are stored without their leading underscore. Every column is kept, known or not, and
//! written back unchanged, so a read–write round trip loses nothing but superfluous quotes.

mod parse;
mod table;
mod write;

pub use parse::parse;
pub use table::Table;

use std::path::Path;

use crate::error::{Error, Result};

/// A STAR file: its data blocks, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StarFile {
    /// The data blocks.
    pub blocks: Vec<DataBlock>,
}

/// One `data_NAME` block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataBlock {
    /// The name after `data_` (may be empty).
    pub name: String,
    /// Comment lines just before the block (e.g. `# version 30001`).
    pub comments: Vec<String>,
    /// Pairs and loops, in file order.
    pub items: Vec<Item>,
}

/// A key–value pair or a loop.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `_tag value`.
    Pair {
        /// Tag without the underscore.
        tag: String,
        /// Value, unquoted.
        value: String,
    },
    /// `loop_` with its columns and rows.
    Loop(Table),
}

impl StarFile {
    /// Reads and parses a STAR file; errors name the file and line.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(e, path))?;
        let text = String::from_utf8_lossy(&bytes);
        parse(&text).map_err(|e| e.with_path(path))
    }

    /// Writes the file atomically.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::io::atomic::write_atomic(path, self.to_string().as_bytes())
    }

    /// The first block with this name.
    pub fn block(&self, name: &str) -> Option<&DataBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }

    /// The first block with this name, mutable.
    pub fn block_mut(&mut self, name: &str) -> Option<&mut DataBlock> {
        self.blocks.iter_mut().find(|b| b.name == name)
    }
}

impl DataBlock {
    /// An empty block.
    pub fn new(name: &str) -> Self {
        DataBlock { name: name.to_string(), ..Default::default() }
    }

    /// A block holding one loop.
    pub fn with_table(name: &str, table: Table) -> Self {
        DataBlock { name: name.to_string(), comments: Vec::new(), items: vec![Item::Loop(table)] }
    }

    /// The value of a pair.
    pub fn pair(&self, tag: &str) -> Option<&str> {
        self.items.iter().find_map(|item| match item {
            Item::Pair { tag: t, value } if t == tag => Some(value.as_str()),
            _ => None,
        })
    }

    /// The loops, in order.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.items.iter().filter_map(|item| match item {
            Item::Loop(t) => Some(t),
            _ => None,
        })
    }

    /// The first loop.
    pub fn table(&self) -> Option<&Table> {
        self.tables().next()
    }

    /// The first loop, mutable.
    pub fn table_mut(&mut self) -> Option<&mut Table> {
        self.items.iter_mut().find_map(|item| match item {
            Item::Loop(t) => Some(t),
            _ => None,
        })
    }

    /// The loop that has a column of this name.
    pub fn table_with_column(&self, column: &str) -> Option<&Table> {
        self.tables().find(|t| t.has_column(column))
    }
}

impl std::fmt::Display for StarFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&write::to_string(self))
    }
}
