//! Deformation models and their priors: elastic-network normal modes (ANM), which simulate
//! motions with known truth; the neighbour graph and elastic regulariser of the decoder.

mod anm;
mod elastic;

pub use anm::{NormalModes, anm_hessian, anm_modes};
pub use elastic::{NeighbourGraph, elastic_loss, steadiest_edges};
