//! Reconstruction: Fourier insertion of particle images, Wiener-regularised half maps, FSC.

mod fsc;
mod insert;
mod wiener;

pub use fsc::{fsc, fsc_of_spectra, resolution_at, shell_indices, volume_spectrum};
pub use insert::FourierAccumulator;
pub use wiener::{FscKind, ssnr_from_fsc};
