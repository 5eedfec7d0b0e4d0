//! Whole operations behind the commands: options in, results out, no printing.

pub mod reconstruct;
pub mod simulate;
