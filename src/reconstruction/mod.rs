//! Reconstruction: Fourier insertion of particle images, Wiener-regularised half maps, FSC.

mod fsc;

pub use fsc::{fsc, fsc_of_spectra, resolution_at, shell_indices, volume_spectrum};
