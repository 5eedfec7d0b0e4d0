//! Whole operations behind the commands: options in, results out, no printing.

pub mod deformable_backprojection;
pub mod explore;
pub mod gaussian_model;
pub mod ground_truth;
pub mod optimize_deformations;
pub mod reconstruct;
pub mod simulate;
