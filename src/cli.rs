//! Command-line definitions (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::target::TargetArgs;

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
    /// Run the gateway (`openclaw gateway` = `openclaw gateway run`), or query it.
    #[command(
        after_help = "Examples:\n  openclaw gateway\n  openclaw gateway --port 18789 --log-level debug\n  openclaw gateway call status --json\n  openclaw gateway list-connections"
    )]
    Gateway(GatewayArgs),
    /// One screen about a gateway: reachability, version, uptime, clients, audit.
    /// Exit 0 reachable, 1 unreachable, 2 auth rejected.
    #[command(
        after_help = "Examples:\n  openclaw status\n  openclaw status --gateway ws://localhost:18789 --token $TOKEN\n  watch -n 1 'openclaw status'"
    )]
    Status(StatusArgs),
    /// Handshake time and request round trips, like ping(8).
    #[command(
        after_help = "Examples:\n  openclaw ping --gateway ws://localhost:18789\n  openclaw ping --gateway ws://localhost:18789 -c 3 -i 0.2"
    )]
    Ping(PingArgs),
    /// The gateway's health.
    #[command(after_help = "Examples:\n  openclaw health\n  openclaw health --json")]
    Health(JsonTargetArgs),
    /// The audit log: logins, connections, crashes (local file, or `audit.tail` remotely).
    #[command(
        after_help = "Examples:\n  openclaw logs --filter auth\n  openclaw logs --follow\n  openclaw logs --limit 50 --json"
    )]
    Logs(LogsArgs),
    /// Troubleshooting checks, each OK/WARN/FAIL with a one-line fix: port listening and on
    /// which addresses, gateway answers, token file modes, tunnels (with `ssh -v`),
    /// Tailscale, firewall rules, TLS expiry, audit log and disk space, CDP ports.
    /// Exit 0 no FAIL, 1 any FAIL.
    #[command(after_help = "Examples:\n  openclaw doctor\n  openclaw doctor --json")]
    Doctor(JsonTargetArgs),
    /// Live, every actor message about one connection (session, auth, limiter, node relay,
    /// audit) at any level, while the rest of the gateway keeps its log level; ends by itself.
    #[command(
        after_help = "Examples:\n  openclaw gateway connections\n  openclaw trace 3f2c9a1e-…\n  openclaw trace --peer 127.0.0.1 --for 30\n  openclaw trace --client node-host"
    )]
    Trace(TraceArgs),
    /// The ports a gateway uses (base, browser control, canvas, CDP range).
    #[command(after_help = "Examples:\n  openclaw ports\n  openclaw ports --port 19001 --json")]
    Ports(PortsArgs),
    /// SSH tunnels kept up autossh-style (config `tunnels: [...]`).
    #[command(subcommand)]
    Tunnel(TunnelCmd),
    /// Device pairing: approve, reject or remove devices that connect from other machines.
    #[command(subcommand)]
    Devices(DevicesCmd),
    /// Nodes (machines running `openclaw node`): approve their command surface, list,
    /// describe, rename, remove, and invoke their commands.
    #[command(subcommand)]
    Nodes(NodesCmd),
    /// Tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// TLS on the gateway port (`gateway.tls`).
    #[command(subcommand)]
    Tls(TlsCmd),
    /// Shell completions.
    #[command(
        after_help = "Examples:\n  openclaw completions bash > ~/.local/share/bash-completion/completions/openclaw"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Target flags plus `--json`.
#[derive(Debug, Args, Clone)]
pub struct JsonTargetArgs {
    /// Which gateway.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `openclaw status`.
#[derive(Debug, Args, Clone)]
pub struct StatusArgs {
    /// Which gateway.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `openclaw ping`.
#[derive(Debug, Args, Clone)]
pub struct PingArgs {
    /// Which gateway.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Stop after COUNT requests (default: until Ctrl-C).
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,
    /// Seconds between requests.
    #[arg(
        short = 'i',
        long = "interval",
        value_name = "SECONDS",
        default_value_t = 1.0
    )]
    pub interval: f64,
}

/// `openclaw logs`.
#[derive(Debug, Args, Clone)]
pub struct LogsArgs {
    /// Which gateway (default: the local audit log file).
    #[command(flatten)]
    pub target: TargetArgs,
    /// Event family: auth, conn, session, device, gateway, actor, tunnel, config, ratelimit
    /// (rate-limit hits, connection caps, lockouts), tls, node, tailscale (claim, whois,
    /// tailscale logins).
    #[arg(long, value_name = "KIND")]
    pub filter: Option<String>,
    /// Keep printing new events until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How many recent events to show first.
    #[arg(long, default_value_t = 200)]
    pub limit: usize,
    /// Raw JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// `openclaw ports`.
#[derive(Debug, Args, Clone)]
pub struct PortsArgs {
    /// Base port (default: the active profile's gateway port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `openclaw tunnel …`.
#[derive(Debug, Subcommand)]
pub enum TunnelCmd {
    /// Run the configured tunnels in the foreground (no gateway); Ctrl-C stops them.
    #[command(
        after_help = "Examples:\n  openclaw tunnel run\n  openclaw tunnel run host1 host2 --config ./tunnels.json5"
    )]
    Run {
        /// Only these tunnels (default: all).
        names: Vec<String>,
        /// Config file.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Log level.
        #[arg(long, value_enum)]
        log_level: Option<LogLevel>,
    },
    /// State of each tunnel: state, pid, uptime, restarts, last exit, ssh stderr, next retry.
    #[command(after_help = "Examples:\n  openclaw tunnel status\n  openclaw tunnel status --json")]
    Status(JsonTargetArgs),
    /// Restart one tunnel now (through the gateway that runs it).
    #[command(after_help = "Examples:\n  openclaw tunnel restart host1")]
    Restart {
        /// Tunnel name.
        name: String,
        /// Which gateway.
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Print `tunnels:` entries for the `~/.ssh/config` Host blocks that have a
    /// `LocalForward` (paste them into the config; ssh keeps reading the block).
    #[command(
        after_help = "Examples:\n  openclaw tunnel import\n  openclaw tunnel import --ssh-config ./ssh_config"
    )]
    Import {
        /// The ssh config file to read (default ~/.ssh/config).
        #[arg(long, value_name = "PATH")]
        ssh_config: Option<PathBuf>,
    },
}

/// `openclaw devices …`.
#[derive(Debug, Subcommand)]
pub enum DevicesCmd {
    /// Pending pairing requests (expire 5 minutes after the device's last attempt) and
    /// paired devices.
    #[command(after_help = "Examples:\n  openclaw devices list\n  openclaw devices list --json")]
    List(JsonTargetArgs),
    /// Approve a pending request; the device can connect from then on.
    #[command(
        after_help = "Examples:\n  openclaw devices approve 810b0e63-a666-401e-98f9-d840daea889e"
    )]
    Approve {
        /// The request id (REQUEST column of `openclaw devices list`).
        request_id: String,
        /// Which gateway.
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Reject a pending request (the device may ask again).
    #[command(
        after_help = "Examples:\n  openclaw devices reject 810b0e63-a666-401e-98f9-d840daea889e"
    )]
    Reject {
        /// The request id (REQUEST column of `openclaw devices list`).
        request_id: String,
        /// Which gateway.
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Remove a paired device: its open connections are closed and it must pair again.
    #[command(
        visible_alias = "remove",
        after_help = "Examples:\n  openclaw devices list\n  openclaw devices revoke 4fb7a1b2c3d4"
    )]
    Revoke {
        /// The device id, or a unique prefix of at least 8 characters (DEVICE column of
        /// `openclaw devices list`).
        device_id: String,
        /// Which gateway.
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// `openclaw nodes …`. NODE is a node id, a display name, a remote IP, or a unique prefix of
/// the id (at least 6 characters).
#[derive(Debug, Subcommand)]
pub enum NodesCmd {
    /// Known nodes (state, address, how long connected) and pending approval requests.
    #[command(after_help = "Examples:\n  openclaw nodes list\n  openclaw nodes list --json")]
    List(JsonTargetArgs),
    /// Pending requests to approve a node's command surface, and the scopes approving needs.
    #[command(after_help = "Examples:\n  openclaw nodes pending\n  openclaw nodes pending --json")]
    Pending(JsonTargetArgs),
    /// Approve a pending request: the node may run the commands it declared. Asks the gateway
    /// for exactly the scopes the request needs (operator.admin for system.run and the like).
    #[command(
        after_help = "Examples:\n  openclaw nodes pending\n  openclaw nodes approve f4063c99-2b1e-4c4a-9d0e-6f1a2b3c4d5e"
    )]
    Approve {
        /// The request id (REQUEST column of `openclaw nodes pending`).
        request_id: String,
        /// Which gateway, and --json.
        #[command(flatten)]
        target: JsonTargetArgs,
    },
    /// Reject a pending request (the node keeps its previously approved surface, if any).
    #[command(
        after_help = "Examples:\n  openclaw nodes reject f4063c99-2b1e-4c4a-9d0e-6f1a2b3c4d5e"
    )]
    Reject {
        /// The request id (REQUEST column of `openclaw nodes pending`).
        request_id: String,
        /// Which gateway, and --json.
        #[command(flatten)]
        target: JsonTargetArgs,
    },
    /// Remove a paired node: its connection is closed and it must pair again.
    #[command(
        after_help = "Examples:\n  openclaw nodes remove peer-node\n  openclaw nodes remove 548d1234"
    )]
    Remove {
        /// Node id, display name, remote IP, or a unique id prefix of 6+ characters.
        node: String,
        /// Which gateway, and --json.
        #[command(flatten)]
        target: JsonTargetArgs,
    },
    /// Give a node a new display name.
    #[command(after_help = "Examples:\n  openclaw nodes rename 548d1234 build-box")]
    Rename {
        /// Node id, display name, remote IP, or a unique id prefix of 6+ characters.
        node: String,
        /// The new display name.
        name: String,
        /// Which gateway, and --json.
        #[command(flatten)]
        target: JsonTargetArgs,
    },
    /// Everything the gateway knows about one node: platform, state, caps, commands, host stats.
    #[command(
        after_help = "Examples:\n  openclaw nodes describe peer-node\n  openclaw nodes describe 10.0.0.7 --json"
    )]
    Describe {
        /// Node id, display name, remote IP, or a unique id prefix of 6+ characters.
        node: String,
        /// Which gateway, and --json.
        #[command(flatten)]
        target: JsonTargetArgs,
    },
    /// Run a command on a node (`node.invoke`). For system.run the node's stdout and stderr are
    /// printed as they are and its exit code becomes ours (without --json); other commands
    /// print their payload.
    #[command(
        mut_arg("timeout", |a| a
            .default_value("15000")
            .help("How long the node may take, in milliseconds (sent as timeoutMs; 0 = no deadline)")),
        after_help = "Examples:\n  openclaw nodes invoke peer-node system.which --params '{\"bins\": [\"sh\"]}'\n  openclaw nodes invoke peer-node system.run --params '{\"command\": [\"echo\", \"hi\"]}'\n  openclaw nodes invoke 10.0.0.7 system.run --params '{\"command\": [\"sleep\", \"30\"]}' --timeout 60000"
    )]
    Invoke {
        /// Node id, display name, remote IP, or a unique id prefix of 6+ characters.
        node: String,
        /// The node command, e.g. system.run, system.which (COMMANDS of `openclaw nodes
        /// describe`).
        command: String,
        /// The command's parameters: a JSON object.
        #[arg(long, value_name = "JSON")]
        params: Option<String>,
        /// Which gateway, and --json.
        #[command(flatten)]
        target: JsonTargetArgs,
    },
}

/// `openclaw token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Print a new random token (letters and digits).
    #[command(
        after_help = "Examples:\n  openclaw token generate\n  export OPENCLAW_GATEWAY_TOKEN=$(openclaw token generate --length 64)"
    )]
    Generate {
        /// Length (at least 32).
        #[arg(long, default_value_t = 48)]
        length: usize,
    },
    /// Write a new token where this machine's gateway reads it (the runtime token file, or
    /// a literal gateway.auth.token in the config file, replaced in place), have the running
    /// gateway reload it (open connections stay, new ones need the new token), and say which
    /// clients need it. A token from an environment variable or --token cannot be rewritten:
    /// it says what to change instead (exit 2).
    #[command(
        after_help = "Examples:\n  openclaw token rotate\n  openclaw token rotate --json\n  openclaw token rotate --show   # print the new token once"
    )]
    Rotate {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Print the new token (it is masked otherwise).
        #[arg(long)]
        show: bool,
        /// Give up on the running gateway after this many milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 10_000)]
        timeout: u64,
    },
}

/// `openclaw config …`.
#[derive(Debug, Subcommand)]
pub enum TlsCmd {
    /// Print the SHA-256 fingerprint of the gateway's certificate (no running gateway
    /// needed): what a client pins with `--tls-fingerprint` or `gateway.remote.tlsFingerprint`.
    #[command(
        after_help = "Examples:\n  openclaw tls fingerprint\n  openclaw tls fingerprint --json"
    )]
    Fingerprint {
        /// Config file (default: the active profile's).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `openclaw config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Check the config as `openclaw gateway` would and print the effective settings
    /// (secrets masked), or every error.
    #[command(
        after_help = "Examples:\n  openclaw config validate\n  openclaw config validate --config ./openclaw.json --json"
    )]
    Validate {
        /// Config file (default: the active profile's).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
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
    /// Call any gateway method.
    #[command(
        after_help = "Examples:\n  openclaw gateway call health --json\n  openclaw gateway call logs.tail --params '{\"limit\": 5}'"
    )]
    Call(CallArgs),
    /// List the gateway's connections.
    #[command(visible_alias = "list-connections")]
    Connections(JsonTargetArgs),
    /// Same as `openclaw status`.
    Status(StatusArgs),
    /// Show or switch the running gateway's log filter, without a restart.
    #[command(
        after_help = "Examples:\n  openclaw gateway log-level\n  openclaw gateway log-level debug\n  openclaw gateway log-level 'info,openclaw_actors::nodes=trace'\n  openclaw gateway log-level info      # back to normal"
    )]
    LogLevel(LogLevelArgs),
}

/// `openclaw gateway log-level`.
#[derive(Debug, Args, Clone)]
pub struct LogLevelArgs {
    /// New filter: a level (error, warn, info, debug, trace) or tracing directives such as
    /// `info,openclaw_actors::session=debug`. Without it, prints the filter in force.
    pub filter: Option<String>,
    /// Which gateway.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `openclaw gateway call`.
#[derive(Debug, Args, Clone)]
pub struct CallArgs {
    /// Method name, e.g. health, status, gateway.connections.list.
    pub method: String,
    /// Parameters as JSON.
    #[arg(long, value_name = "JSON")]
    pub params: Option<String>,
    /// Which gateway.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
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
    /// A reverse proxy in gateway.trustedProxies names the user.
    TrustedProxy,
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
    /// Bind mode: loopback (default), lan, tailnet, custom, auto, or an IP address (custom).
    /// Anything beyond loopback needs a token or password.
    #[arg(long, value_name = "MODE|IP")]
    pub bind: Option<String>,
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
    /// Tailscale: `serve` (tailnet only, identity auth) or `funnel` (internet, password
    /// auth only); overrides gateway.tailscale.mode. Needs bind loopback.
    #[arg(long, value_name = "off|serve|funnel", value_parser = ["off", "serve", "funnel"])]
    pub tailscale: Option<String>,
}

// === impl ValueEnums as config strings ===

impl AuthArg {
    /// Config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthArg::None => "none",
            AuthArg::Token => "token",
            AuthArg::Password => "password",
            AuthArg::TrustedProxy => "trusted-proxy",
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

/// `openclaw trace`.
#[derive(Debug, Args, Clone)]
pub struct TraceArgs {
    /// Connection id (CONN column of `openclaw gateway connections`).
    pub conn_id: Option<String>,
    /// Every connection from this IP.
    #[arg(long, value_name = "IP")]
    pub peer: Option<String>,
    /// Every connection of this client id (e.g. node-host, cli).
    #[arg(long, value_name = "ID")]
    pub client: Option<String>,
    /// How long, in seconds (1-3600).
    #[arg(long = "for", value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub for_secs: u64,
    /// Which gateway.
    #[command(flatten)]
    pub target: TargetArgs,
}
