//! `openclaw`: the gateway daemon and its CLI. `main` only parses flags and hands off.

#![forbid(unsafe_code)]

mod cli;
mod gateway_cmd;
mod logging;
mod signals;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    let code = match args.command {
        cli::Command::Gateway(g) => gateway_cmd::run(&args.global, g),
    };
    std::process::exit(code);
}
