//! Deformation models. For now: elastic-network normal modes (ANM), which simulate motions with
//! known truth and will serve as an elastic prior.

mod anm;

pub use anm::{NormalModes, anm_hessian, anm_modes};
