//! Whole operations behind the commands: options in, results out, no printing.

pub mod gaussian_model;
pub mod optimize_deformations;
pub mod reconstruct;
pub mod simulate;
