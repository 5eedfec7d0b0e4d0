//! Training the deformation model (`optimize-deformations`): the particles on the training
//! grid ([`data`]), one half set's model and optimisers ([`half`]), one batch forward and
//! backward ([`step`]), and the schedule over epochs with its checkpoints ([`trainer`]).
//!
//! # Schedule
//! - Half sets follow rlnRandomSubset; each half holds out a small validation subset whose
//!   residuals estimate the noise spectrum that whitens its loss.
//! - Warm-up epochs: no deformation; the consensus Gaussians (positions, amplitudes, widths)
//!   and the image scale fit the data.
//! - Then every batch steps the encoder, decoder and consensus on the data term, the elastic
//!   term weighted by λ (factor × ratio of the data to the elastic gradient norms, with respect
//!   to the decoder's weights, of the whitened training loss, from the previous epoch) and
//!   the KL term (β = kld-factor / box²). λ is balanced in the epochs over which β ramps up,
//!   then held (see [`TrainOptions::lambda_balanced`]).
//! - Every `consensus_update_interval` epochs, the consensus is replaced by the mean deformed
//!   model of the least-deformed particles, rigidly registered onto the input map's frame (the
//!   Gaussians fitted to it), so both halves stay in that frame.
//! - The last `decoder_refit_epochs` epochs refit the decoder: every particle's latent is first
//!   refined on its own image (as after training), then the decoder and consensus train on
//!   these fixed latents instead of the encoder's samples. The encoder memorises its images at
//!   low SNR, and a decoder fitted to its noisy latents learns a shrunk, blended motion.

pub mod data;
pub mod half;
pub mod step;
pub mod trained;
pub mod trainer;

pub use data::{Batch, ImageSource, Loader, ParticleSet};
pub use half::{HalfModel, LearningRates};
pub use step::{
    BatchFigures, LatentGuess, LatentPrior, LatentRefinement, Latents, Phase, ShiftRefinement, StepContext,
    Work, evaluate_batch, refine_latents, shift_gradient, train_batch,
};
pub use trained::{RunInputs, TrainedModel};
pub use trainer::{
    BatchProgress, CheckpointHeader, EpochRecord, TrainOptions, Trainer, read_checkpoint, table_fingerprint,
};
