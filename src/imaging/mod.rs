//! The imaging model: CTF as RELION defines it, projection of maps and of Gaussians (atoms,
//! pseudo-atoms) into particle images; the differentiable Gaussian renderer ([`splat`]) and the
//! whitened Fourier loss of training.

mod ctf;
mod gaussians;
mod loss;
mod project;
pub mod splat;

pub use ctf::{Ctf, electron_wavelength};
pub use gaussians::{GaussianSet, electrons};
pub use loss::{
    FourierLoss, GridScratch, GroupGrid, LossScratch, NoiseSpectrum, TrainingGrid, crop_spectrum,
    flat_weights, half_plane_shells, image_spectrum, weights_from_power,
};
pub use project::{FourierProjector, ImageRenderer, shift_half_plane, shift_phases};
