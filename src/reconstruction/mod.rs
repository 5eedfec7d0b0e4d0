//! Reconstruction: Fourier insertion of particle images, Wiener-regularised half maps, FSC.

mod fsc;
mod insert;
mod mask;
mod wiener;

pub use fsc::{fsc, fsc_of_spectra, resolution_at, shell_indices, volume_spectrum};
pub use insert::FourierAccumulator;
pub use mask::{soften_outside_sphere, sphere_mask};
pub use wiener::{FscKind, ssnr_from_fsc};
