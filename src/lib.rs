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
//! - Map centre at voxel n/2; particle images follow RELION's Fourier centre n − n/2 (the same
//!   for the even boxes RELION extracts); see [`fft`].
//! - Projections are line integrals in voxel units: a projection equals relion_project's.
//!
//! # Modules
//! - [`io`]: file formats (MRC, STAR, .cs, NumPy, pickles, PDB/mmCIF) at the edges;
//!   [`particles`]: the typed particle table.
//! - [`fft`], [`imaging`]: FFT plans and conventions; CTF, projection of maps and Gaussians.
//! - [`reconstruction`]: Fourier insertion, Wiener maps, FSC, masks, filters.
//! - [`model`], [`linalg`]: deformation models (ANM normal modes so far), eigensolver.
//! - [`nn`]: the network compute core (layers with backward passes, Adam, gradcheck).
//! - [`ops`]: whole operations behind the commands; [`plot`]: PNG charts; [`inspect`]: reports.
//!
//! The library never prints and never exits: it returns [`Error`]s that name the file, the
//! line or row and the field.

#![deny(missing_docs)]

pub mod analysis;
pub mod array;
pub mod error;
pub mod fft;
pub mod geometry;
pub mod imaging;
pub mod inspect;
pub mod io;
pub mod linalg;
pub mod model;
pub mod nn;
pub mod ops;
pub mod particles;
pub mod plot;
pub mod reconstruction;
pub mod rng;
pub mod training;
pub mod view;

pub use error::{Error, ErrorKind, Result};
