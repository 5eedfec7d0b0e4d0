//! Deformation models and their priors: the Gaussian consensus model (fitted to a map, or one
//! Gaussian per residue of an atomic model); elastic-network normal modes (ANM), which simulate
//! motions with known truth; the neighbour graph and elastic regulariser of the decoder; removal of global rigid motion
//! from deformations; smoothing of the learnt displacement field.

mod anm;
mod elastic;
mod gaussians;
mod rigid_free;
mod smoothing;

pub use anm::{NormalModes, anm_hessian, anm_modes};
pub use elastic::{NeighbourGraph, elastic_loss, steadiest_edges};
pub use gaussians::{FitOptions, FitReport, GaussianModel, otsu_threshold};
pub use rigid_free::RigidMotionRemover;
pub use smoothing::{DEFAULT_SMOOTHING, DisplacementSmoothing, SILENT_AMPLITUDE, silent_threshold};
