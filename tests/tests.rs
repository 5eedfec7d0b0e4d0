//! Integration tests against real files from other programs (../shared/data) and round trips.

mod atoms;
mod cli;
mod cs;
mod mrc;
mod star;
mod util;
