//! Deformation models and their priors: the Gaussian consensus model (fitted to a map, or one
//! Gaussian per residue of an atomic model); elastic-network normal modes (ANM), which simulate
//! motions with known truth; the neighbour graph and elastic regulariser of the decoder; removal of global rigid motion
//! from deformations; Gaussians without density moved with the density around them.

mod anm;
mod elastic;
mod gaussians;
mod rigid_free;
mod silent;

pub use anm::{NormalModes, anm_hessian, anm_modes};
pub use elastic::{NeighbourGraph, elastic_loss, steadiest_edges};
pub use gaussians::{FitOptions, FitReport, GaussianModel, otsu_threshold};
pub use rigid_free::RigidMotionRemover;
pub use silent::{SILENT_AMPLITUDE, SilentGaussians, silent_threshold};
