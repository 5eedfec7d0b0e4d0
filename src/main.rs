//! The `cryomotion` command: parses arguments, runs one command, prints errors once.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
