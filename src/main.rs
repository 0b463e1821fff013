//! `openclaw`: the gateway daemon and its CLI. `main` only parses flags and hands off.

#![forbid(unsafe_code)]

mod cli;
mod client;
mod commands;
mod gateway_cmd;
mod logging;
mod signals;
mod target;
mod transport;

use clap::Parser;

/// mimalloc instead of glibc's malloc: fewer instructions per allocation, and a handshake
/// makes ~180 of them (issue 15; BENCHMARKS.md "Performance").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `println!` that ignores a closed stdout (`openclaw logs | head` must not panic).
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

use cli::{Command, ConfigCmd, DevicesCmd, GatewayCmd, TlsCmd, TokenCmd, TunnelCmd};
use commands::{admin, devices, logs, nodes, ping, query, tunnel};

fn main() {
    let args = cli::Cli::parse();
    let g = &args.global;
    let code = match args.command {
        Command::Gateway(gw) => match gw.cmd {
            None | Some(GatewayCmd::Run(_)) => gateway_cmd::run(g, gw),
            Some(GatewayCmd::Call(c)) => {
                query::call(g, &c.target, &c.method, c.params.as_deref(), c.json)
            }
            Some(GatewayCmd::Connections(c)) => query::connections(g, &c.target, c.json),
            Some(GatewayCmd::Status(s)) => query::status(g, &s.target, s.json),
            Some(GatewayCmd::LogLevel(l)) => query::log_level(g, &l),
        },
        Command::Status(s) => query::status(g, &s.target, s.json),
        Command::Ping(p) => ping::ping(g, &p.target, p.count, p.interval),
        Command::Health(h) => query::health(g, &h.target, h.json),
        Command::Logs(l) => {
            let o = logs::LogsOpts {
                filter: l.filter,
                follow: l.follow,
                limit: l.limit,
                json: l.json,
            };
            logs::logs(g, &l.target, o)
        }
        Command::Doctor(d) => commands::doctor::doctor(g, &d.target, d.json),
        Command::Trace(t) => commands::trace::trace(g, &t),
        Command::Ports(p) => admin::ports(g, p.port, p.json),
        Command::Tunnel(TunnelCmd::Run {
            names,
            config,
            log_level,
        }) => gateway_cmd::run_tunnels(g, names, config, log_level),
        Command::Tunnel(TunnelCmd::Status(s)) => tunnel::status(g, &s.target, s.json),
        Command::Tunnel(TunnelCmd::Restart { name, target }) => tunnel::restart(g, &target, &name),
        Command::Tunnel(TunnelCmd::Import { ssh_config }) => tunnel::import(ssh_config),
        Command::Devices(DevicesCmd::List(l)) => devices::list(g, &l.target, l.json),
        Command::Devices(DevicesCmd::Approve { request_id, target }) => {
            devices::approve(g, &target, &request_id)
        }
        Command::Devices(DevicesCmd::Reject { request_id, target }) => {
            devices::reject(g, &target, &request_id)
        }
        Command::Devices(DevicesCmd::Revoke { device_id, target }) => {
            devices::revoke(g, &target, &device_id)
        }
        Command::Nodes(n) => nodes::run(g, n),
        Command::Token(TokenCmd::Generate { length }) => admin::token_generate(length),
        Command::Token(TokenCmd::Rotate {
            json,
            show,
            timeout,
        }) => {
            let o = commands::token::RotateOpts {
                json,
                show,
                timeout,
            };
            commands::token::rotate(g, &o)
        }
        Command::Tls(TlsCmd::Fingerprint { config, json }) => {
            admin::tls_fingerprint(g, config, json)
        }
        Command::Config(ConfigCmd::Validate { config, json }) => {
            admin::config_validate(g, config, json)
        }
        Command::Completions { shell } => admin::completions(shell),
    };
    std::process::exit(code);
}
