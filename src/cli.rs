//! Command-line definitions (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Secure remote access to an OpenClaw Gateway.
#[derive(Debug, Parser)]
#[command(name = "openclaw", version, about, long_about = None)]
pub struct Cli {
    /// Flags that apply to every command.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Global flags.
#[derive(Debug, Args, Clone, Default)]
pub struct Global {
    /// Use ~/.openclaw-NAME for state and config.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Development profile: ~/.openclaw-dev and port 19001.
    #[arg(long, global = true)]
    pub dev: bool,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (`openclaw gateway` = `openclaw gateway run`).
    #[command(
        after_help = "Examples:\n  openclaw gateway\n  openclaw gateway --port 18789 --log-level debug\n  OPENCLAW_GATEWAY_TOKEN=... openclaw gateway run --auth token"
    )]
    Gateway(GatewayArgs),
}

/// `openclaw gateway`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatewayArgs {
    /// Subcommand (default: run).
    #[command(subcommand)]
    pub cmd: Option<GatewayCmd>,
    /// Flags for `run` when no subcommand is given.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `openclaw gateway <subcommand>`.
#[derive(Debug, Subcommand)]
pub enum GatewayCmd {
    /// Run the gateway in the foreground.
    Run(RunArgs),
}

/// Bind modes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BindMode {
    /// 127.0.0.1 and [::1] (default).
    Loopback,
    /// 0.0.0.0 and :: (not supported yet).
    Lan,
    /// Tailscale address plus loopback (not supported yet).
    Tailnet,
    /// gateway.customBindHost (not supported yet).
    Custom,
    /// lan in containers, else loopback (not supported yet).
    Auto,
}

/// Auth modes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuthArg {
    /// No secret (loopback only).
    None,
    /// Shared token (default).
    Token,
    /// Shared password.
    Password,
}

/// Log levels.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Normal operation (default).
    Info,
    /// Detail for troubleshooting.
    Debug,
    /// Every actor message.
    Trace,
}

/// Flags of `openclaw gateway run`.
#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// Port (default 18789; env OPENCLAW_GATEWAY_PORT; config gateway.port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Bind mode.
    #[arg(long, value_enum)]
    pub bind: Option<BindMode>,
    /// Auth mode.
    #[arg(long, value_enum)]
    pub auth: Option<AuthArg>,
    /// Gateway token (prefer env OPENCLAW_GATEWAY_TOKEN: flags show up in `ps`).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Gateway password (prefer env OPENCLAW_GATEWAY_PASSWORD).
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Log level (RUST_LOG overrides it).
    #[arg(long, value_enum)]
    pub log_level: Option<LogLevel>,
    /// Config file (default ~/.openclaw/openclaw.json; env OPENCLAW_CONFIG_PATH).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

// === impl ValueEnums as config strings ===

impl BindMode {
    /// Config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BindMode::Loopback => "loopback",
            BindMode::Lan => "lan",
            BindMode::Tailnet => "tailnet",
            BindMode::Custom => "custom",
            BindMode::Auto => "auto",
        }
    }
}

impl AuthArg {
    /// Config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthArg::None => "none",
            AuthArg::Token => "token",
            AuthArg::Password => "password",
        }
    }
}

impl LogLevel {
    /// Filter spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}
