//! Reconstruction: Fourier insertion of particle images, Wiener-regularised half maps, FSC.

mod filter;
mod fsc;
mod insert;
mod mask;
mod wiener;

pub use filter::{low_pass, low_pass_angstrom, shell_filter, volume_from_spectrum};
pub use fsc::{
    MaskedFsc, fsc, fsc_of_spectra, masked_fsc, randomise_phases, resolution_at, shell_indices,
    volume_spectrum,
};
pub use insert::{FourierAccumulator, insertion_order};
pub use mask::{soften_outside_sphere, sphere_mask, squared_distance, threshold_mask};
pub use wiener::{FscKind, ssnr_from_fsc};
