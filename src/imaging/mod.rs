//! The imaging model: CTF as RELION defines it, projection of maps and of Gaussians (atoms,
//! pseudo-atoms) into particle images.

mod ctf;
mod gaussians;
mod project;

pub use ctf::{Ctf, electron_wavelength};
pub use gaussians::{GaussianSet, electrons};
pub use project::{FourierProjector, ImageRenderer, shift_half_plane};
