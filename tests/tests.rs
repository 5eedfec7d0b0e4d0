//! Integration tests against real files from other programs (../shared/data) and round trips.

mod atoms;
mod backprojection;
mod cli;
mod cs;
mod deformations;
mod demo;
mod explore;
mod gaussians;
mod imaging;
mod mrc;
mod reconstruction;
mod regressions;
mod relion;
mod simulate;
mod star;
mod util;
mod view;
