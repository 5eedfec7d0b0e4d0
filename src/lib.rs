//! cryomotion: find how macromolecules move in cryo-EM data and use the motions to sharpen
//! the map.
//!
//! # Conventions
//! - Arrays are x fastest: voxel (x, y, z) of an (nx, ny, nz) volume is at `(z·ny + y)·nx + x`
//!   (MRC order), whatever the file's mapc/mapr/maps.
//! - Euler angles are RELION's ZYZ (rot, tilt, psi) in degrees; the matrix is
//!   A = Rz(−psi)·Ry(−tilt)·Rz(−rot) ([`geometry::euler_to_matrix`]).
//! - Origins are in Å; a particle sits at the image centre minus its origin.
//! - Defoci are in Å, positive for underfocus; CTF parameters as RELION defines them.
//! - Pixel sizes are in Å.
//!
//! The library never prints and never exits: it returns [`Error`]s that name the file, the
//! line or row and the field.

#![deny(missing_docs)]

pub mod array;
pub mod error;
pub mod fft;
pub mod geometry;
pub mod imaging;
pub mod inspect;
pub mod io;
pub mod linalg;
pub mod model;
pub mod ops;
pub mod particles;
pub mod plot;
pub mod reconstruction;
pub mod rng;

pub use error::{Error, ErrorKind, Result};
