//! Command-line interface: one file per command; each turns its arguments into library calls.

mod deformable_backprojection;
mod demo;
mod explore_latent_space;
mod fsc;
mod gaussian_model;
mod info;
mod mask;
mod optimize_deformations;
mod optimize_inverse_deformations;
mod progress;
mod reconstruct;
mod simulate;
mod trained_run;
mod view;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Find how macromolecules move in cryo-EM data and use the motions to sharpen the map.
#[derive(Parser)]
#[command(name = "cryomotion", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    DeformableBackprojection(deformable_backprojection::Args),
    Demo(demo::Args),
    ExploreLatentSpace(explore_latent_space::Args),
    Fsc(fsc::Args),
    GaussianModel(gaussian_model::Args),
    Info(info::Args),
    Mask(mask::Args),
    OptimizeDeformations(optimize_deformations::Args),
    OptimizeInverseDeformations(optimize_inverse_deformations::Args),
    Reconstruct(reconstruct::Args),
    Simulate(simulate::Args),
    View(view::Args),
}

/// Runs the command line; errors are printed once, with their whole chain.
pub fn main() -> ExitCode {
    match dispatch(Cli::parse().command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs one command given as its words (without the program name), as the command line would.
pub(crate) fn run_command(words: &[String]) -> anyhow::Result<ExitCode> {
    let cli = Cli::try_parse_from(std::iter::once("cryomotion".to_string()).chain(words.iter().cloned()))?;
    dispatch(cli.command)
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::DeformableBackprojection(args) => deformable_backprojection::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::ExploreLatentSpace(args) => explore_latent_space::run(&args),
        Command::Fsc(args) => fsc::run(&args),
        Command::GaussianModel(args) => gaussian_model::run(&args),
        Command::Info(args) => info::run(&args),
        Command::Mask(args) => mask::run(&args),
        Command::OptimizeDeformations(args) => optimize_deformations::run(&args),
        Command::OptimizeInverseDeformations(args) => optimize_inverse_deformations::run(&args),
        Command::Reconstruct(args) => reconstruct::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::View(args) => view::run(&args),
    }
}
