//! Geometry: rotations in RELION's conventions, rigid fits, displacement fields and warps.
//!
//! Rotations in RELION's conventions: ZYZ Euler angles (rot, tilt, psi) and matrices.
//!
//! RELION's matrix A = Rz(−psi)·Ry(−tilt)·Rz(−rot) rotates the map's coordinates into the
//! projection frame: a projection integrates the map along the rotated z.

mod euler;
mod field;
mod rigid;
mod warp;

pub use euler::{
    Mat3, axis_angle_to_matrix, euler_to_matrix, mat_mul, matrix_to_axis_angle, matrix_to_euler, transpose,
};
pub use field::ScatteredField;
pub use rigid::{Rigid, fit_rigid};
pub use warp::{pull_back, trilinear, warp_forward};
