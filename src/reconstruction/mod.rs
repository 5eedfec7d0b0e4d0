//! Reconstruction: Fourier insertion of particle images, Wiener-regularised half maps, FSC.

mod fsc;
mod insert;

pub use insert::FourierAccumulator;
pub use fsc::{fsc, fsc_of_spectra, resolution_at, shell_indices, volume_spectrum};
