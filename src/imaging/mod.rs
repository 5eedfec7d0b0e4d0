//! The imaging model: CTF as RELION defines it, and projection of maps into particle images.

mod ctf;
mod project;

pub use ctf::{Ctf, electron_wavelength};
pub use project::{FourierProjector, ImageRenderer, shift_half_plane};
