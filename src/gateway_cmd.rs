//! `openclaw gateway [run]`: resolve the config, start the actor tree, wait for a signal.

use std::time::Instant;

use openclaw_actors::config::{self, AuthMode, Inputs};
use openclaw_actors::gateway;
use openclaw_actors::secret::Secret;

use crate::cli::{GatewayArgs, GatewayCmd, Global, LogLevel, RunArgs};
use crate::logging;
use crate::signals::{Ask, Signals};

/// Exit code for bad configuration or refused start-up.
pub const EXIT_CONFIG: i32 = 2;
/// Exit code when the runtime gave up (restart intensity exceeded).
pub const EXIT_RUNTIME: i32 = 70;

/// Runs the gateway; returns the process exit code.
pub fn run(global: &Global, args: GatewayArgs) -> i32 {
    let run = match args.cmd {
        Some(GatewayCmd::Run(r)) => r,
        _ => args.run,
    };
    let started = Instant::now();
    let inputs = inputs(global, &run);
    let env = |k: &str| std::env::var(k).ok();
    let settings = match config::resolve(&inputs, &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("openclaw gateway: {e}");
            return EXIT_CONFIG;
        }
    };
    let reload = match logging::init(&settings.log_level, &settings.log_file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("openclaw gateway: {e}");
            return EXIT_CONFIG;
        }
    };
    raise_open_file_limit();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("openclaw gateway: cannot start the runtime: {e}");
            return EXIT_RUNTIME;
        }
    };
    rt.block_on(serve(settings, started, Some(reload)))
}

/// Raises the open-file soft limit to the hard limit (systemd's default soft limit of 1,024
/// would cap the gateway at about 960 connections) and logs both; the connection cap
/// (`gateway.connections.max`) is then sized from what is in force.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    // RLIM_INFINITY is not a valid soft limit for descriptors; Linux caps at nr_open.
    let target = hard.min(1 << 20);
    if soft >= target {
        return tracing::info!(soft, hard, "open-file limit");
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => tracing::info!(
            from = soft,
            to = target,
            hard,
            "open-file soft limit raised"
        ),
        Err(e) => tracing::warn!(
            soft,
            hard,
            error = %e,
            "cannot raise the open-file soft limit; connections are capped by it \
             (set LimitNOFILE= in the service unit)"
        ),
    }
}

/// `openclaw tunnel run [NAME...]`: the tunnel supervisor in the foreground, no listeners.
pub fn run_tunnels(
    global: &Global,
    names: Vec<String>,
    config: Option<std::path::PathBuf>,
    level: Option<LogLevel>,
) -> i32 {
    let run = RunArgs {
        config,
        log_level: level,
        ..Default::default()
    };
    let env = |k: &str| std::env::var(k).ok();
    let mut settings = match config::resolve(&inputs(global, &run), &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("openclaw tunnel run: {e}");
            return EXIT_CONFIG;
        }
    };
    if let Some(unknown) = names
        .iter()
        .find(|n| !settings.tunnels.iter().any(|t| &t.name == *n))
    {
        let known: Vec<&str> = settings.tunnels.iter().map(|t| t.name.as_str()).collect();
        eprintln!(
            "openclaw tunnel run: no tunnel named {unknown:?} in {} (configured: {known:?})",
            settings.paths.config_path.display()
        );
        return EXIT_CONFIG;
    }
    if !names.is_empty() {
        settings.tunnels.retain(|t| names.contains(&t.name));
    }
    if settings.tunnels.is_empty() {
        eprintln!(
            "openclaw tunnel run: no tunnels configured in {} (add a `tunnels: [...]` section)",
            settings.paths.config_path.display()
        );
        return EXIT_CONFIG;
    }
    settings.listen.clear();
    settings.tailscale = None; // tunnels only: no Tailscale route either
    for t in &settings.tunnels {
        crate::out!(
            "tunnel {}: {}",
            t.name,
            openclaw_actors::tunnel::ssh::argv(t).join(" ")
        );
    }
    let reload = match logging::init(&settings.log_level, &settings.log_file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("openclaw tunnel run: {e}");
            return EXIT_CONFIG;
        }
    };
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(serve(settings, Instant::now(), Some(reload))),
        Err(e) => {
            eprintln!("openclaw tunnel run: cannot start the runtime: {e}");
            EXIT_RUNTIME
        }
    }
}

fn inputs(global: &Global, run: &RunArgs) -> Inputs {
    Inputs {
        config: run.config.clone(),
        profile: global.profile.clone(),
        dev: global.dev,
        port: run.port,
        bind: run.bind.clone(),
        auth: run.auth.map(|a| a.as_str().to_string()),
        token: run.token.clone().map(Secret::new),
        password: run.password.clone().map(Secret::new),
        log_level: run.log_level.map(|l| l.as_str().to_string()),
        tailscale: run.tailscale.clone(),
    }
}

/// Starts the gateway, reports how it listens, then serves until a stop signal (SIGHUP
/// reloads the config meanwhile) or until the runtime gives up.
async fn serve(settings: config::Settings, started: Instant, log: Option<logging::Reload>) -> i32 {
    // Installed before anything binds: a SIGHUP sent once the port answers must reload,
    // never kill the process with the default action.
    let mut signals = Signals::install();
    let log_file = settings.log_file.clone();
    let report = Report::of(&settings);
    let mut gw = match gateway::start(settings).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("openclaw gateway: {e}");
            return EXIT_CONFIG;
        }
    };
    if let Some(r) = &log {
        gw.hub.log.install(r.setter(), &r.initial, r.from_env);
    }
    report.print(&gw);
    tracing::info!(
        startup_ms = started.elapsed().as_millis() as u64,
        "gateway ready"
    );
    let stopped = loop {
        tokio::select! {
            ask = signals.next() => match ask {
                Ask::Reload => {
                    let out = gw.reload("SIGHUP").await;
                    tracing::debug!(outcome = %out, "reload on SIGHUP");
                }
                Ask::Stop(sig) => break Some(sig),
            },
            _ = &mut gw.join => break None,
        }
    };
    let Some(sig) = stopped else {
        eprintln!(
            "openclaw gateway: the runtime stopped after repeated failures; see {}",
            log_file.display()
        );
        return EXIT_RUNTIME;
    };
    tracing::info!(signal = sig, "shutting down");
    if gw.stop(sig).await {
        tracing::info!("shutdown complete");
    } else {
        tracing::warn!("shutdown finished after the grace period; remaining sessions were dropped");
    }
    0
}

/// What start-up prints, taken from the settings before they move into the gateway.
struct Report {
    mode: AuthMode,
    source: String,
    bind: config::BindPlan,
    audit_file: std::path::PathBuf,
    log_file: std::path::PathBuf,
}

// === impl Report ===

impl Report {
    fn of(s: &config::Settings) -> Self {
        Self {
            mode: s.auth.mode,
            source: s.auth.source.to_string(),
            bind: s.bind.clone(),
            audit_file: s.audit_file.clone(),
            log_file: s.log_file.clone(),
        }
    }

    fn print(&self, gw: &gateway::Gateway) {
        for url in gw.hub.registry.listener_urls() {
            crate::out!("listening on {url}");
        }
        if let Some(t) = &gw.hub.tls {
            let m = t.current();
            let expires = m
                .not_after
                .map(openclaw_actors::tls::date)
                .unwrap_or_else(|| "unknown".into());
            crate::out!(
                "tls: {} (expires {expires}; {})",
                openclaw_actors::tls::fingerprint::display(&m.fingerprint),
                t.settings.cert_path.display()
            );
        }
        let ts = gw.hub.tailscale.status();
        if let Some(mode) = ts["mode"].as_str().filter(|m| *m != "off") {
            match ts["host"].as_str() {
                Some(h) => crate::out!("tailscale {mode}: https://{h}/ (wss://{h})"),
                None => crate::out!("tailscale {mode}: route claimed (tailnet name unknown)"),
            }
        }
        let live = gw.hub.live.get();
        match (self.mode, gw.runtime_token_path()) {
            (AuthMode::Token, Some(p)) => {
                crate::out!("auth: token (runtime token in {}, mode 0600)", p.display())
            }
            (AuthMode::Token, None) => crate::out!("auth: token (from {})", self.source),
            (AuthMode::Password, _) => crate::out!("auth: password (from {})", self.source),
            (AuthMode::None, _) => crate::out!("auth: none (loopback only)"),
            (AuthMode::TrustedProxy, _) => crate::out!(
                "auth: trusted-proxy (users named by {})",
                live.policy.trusted_proxies.to_strings().join(", ")
            ),
        }
        if let Some(w) = &self.bind.warning {
            eprintln!("openclaw gateway: warning: {w}");
            tracing::warn!("{w}");
        }
        if self.bind.exposed {
            self.print_exposure(&live.policy);
        }
        crate::out!("audit log: {}", self.audit_file.display());
        crate::out!("gateway log: {}", self.log_file.display());
    }

    fn print_exposure(&self, p: &openclaw_actors::guard::Policy) {
        let allowlist = p
            .allowed
            .as_ref()
            .map(|a| format!("{} entries", a.len()))
            .unwrap_or_else(|| "off (any address may connect)".into());
        let rate = p
            .rate
            .map(|r| {
                format!(
                    "{}/{} ms, {} connections",
                    r.max_requests,
                    r.window.as_millis(),
                    r.max_connections
                )
            })
            .unwrap_or_else(|| "off".into());
        crate::out!(
            "exposed beyond loopback (bind {}): allowlist {allowlist}, rate limit {rate}, pre-auth cap {}/IP",
            self.bind.mode,
            p.max_preauth_per_ip
        );
    }
}
