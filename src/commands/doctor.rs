//! `openclaw doctor [--json]`: the seed's troubleshooting steps (`netstat`, `curl`, `ssh -v`,
//! `tailscale status`, `iptables`), automated. Each check ends OK, WARN or FAIL with a one-line
//! fix; exit 1 when any check failed. Nothing here crashes on a missing tool or file: a check
//! that cannot apply says `skipped: <why>`.
//!
//! `report`, `net`, `tunnels` and `host` are the pure half (parsers and verdicts, unit-tested
//! in `tests.rs`); `sys` runs programs with a time bound and reads files. This file gathers
//! the inputs and puts the report together.

mod host;
mod net;
mod report;
mod sys;
#[cfg(test)]
mod tests;
mod tunnels;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openclaw_actors::config::{load::load_file, resolve_paths, FileConfig, Paths};
use serde_json::{json, Value};

use self::net::Listen;
use self::report::Check;
use super::print_json;
use crate::cli::Global;
use crate::target::{Target, TargetArgs};

/// Bound on `tailscale`, `df` and the firewall tools.
const TOOL_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on `ssh -v`.
const SSH_TIMEOUT: Duration = Duration::from_secs(10);
/// `ssh -v` lines shown per broken tunnel.
const SSH_LINES: usize = 8;
/// Env var naming the ssh program doctor runs (tests); else `OPENCLAW_SSH`, else `ssh`.
const SSH_ENV: &str = "OPENCLAW_DOCTOR_SSH";

/// `openclaw doctor`.
pub fn doctor(global: &Global, args: &TargetArgs, as_json: bool) -> i32 {
    let report = run_checks(global, args);
    if as_json {
        print_json(&report::report_json(&report));
    } else {
        crate::out!("{}", report::render_text(&report).trim_end());
    }
    report::exit_code(&report)
}

/// This machine's side: the config as `openclaw` would load it.
struct Local {
    paths: Option<Paths>,
    file: FileConfig,
    port: u16,
    config: Check,
}

impl Local {
    fn gather(global: &Global) -> Local {
        let env = |k: &str| std::env::var(k).ok();
        let fallback_port = crate::target::local_port(global, &FileConfig::default());
        let paths = match resolve_paths(None, global.profile.as_deref(), global.dev, &env) {
            Ok(p) => p,
            Err(e) => {
                return Local {
                    paths: None,
                    file: FileConfig::default(),
                    port: fallback_port.unwrap_or(openclaw_actors::config::DEFAULT_PORT),
                    config: Check::fail(
                        "config",
                        e.to_string(),
                        "check --profile, OPENCLAW_STATE_DIR and OPENCLAW_CONFIG_PATH",
                    ),
                }
            }
        };
        let cfg = paths.config_path.display().to_string();
        let state = paths.state_dir.display().to_string();
        let (file, mut config) = if paths.config_path.exists() {
            match load_file(&paths.config_path, &env) {
                Ok(f) => (
                    f,
                    Check::ok("config", format!("{cfg} loaded (state dir {state})")),
                ),
                Err(e) => (
                    FileConfig::default(),
                    Check::fail(
                        "config",
                        e.to_string(),
                        format!("fix the file; `openclaw config validate` names the key ({cfg})"),
                    ),
                ),
            }
        } else {
            let c = format!("{cfg} not present: defaults apply (state dir {state})");
            (FileConfig::default(), Check::ok("config", c))
        };
        let port = match crate::target::local_port(global, &file) {
            Ok(p) => p,
            Err(e) => {
                config = Check::fail(
                    "config",
                    e,
                    "unset OPENCLAW_GATEWAY_PORT or set it to a port number",
                );
                file.gateway
                    .port
                    .unwrap_or(openclaw_actors::config::DEFAULT_PORT)
            }
        };
        Local {
            paths: Some(paths),
            file,
            port,
            config,
        }
    }

    fn state_dir(&self) -> Option<&Path> {
        self.paths.as_ref().map(|p| p.state_dir.as_path())
    }
}

fn run_checks(global: &Global, args: &TargetArgs) -> Vec<Check> {
    let local = Local::gather(global);
    let target = crate::target::resolve(args, global);
    let (gateway, st) = gateway_check(&target, args);
    // Whether the gateway that answered is this profile's own (its files are ours to read).
    let here = match (&target, &st) {
        (Ok(t), Some(s)) => {
            t.local
                || (t.is_loopback()
                    && local
                        .state_dir()
                        .is_some_and(|d| s["stateDir"].as_str() == Some(&d.display().to_string()))
                    && runs_here(s["pid"].as_u64()))
        }
        (Ok(t), None) => t.local,
        (Err(_), _) => true,
    };
    let listens = read_listens();
    let port = match &target {
        Ok(t) if !t.local && t.is_loopback() => t
            .host_port()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok()),
        Ok(t) if !t.local => None,
        _ => Some(local.port),
    };
    let tls_on = st.as_ref().map_or_else(
        || local.file.gateway.tls.as_ref().and_then(|t| t.enabled) == Some(true),
        |s| s["tls"]["enabled"] == true,
    );
    let listening = match (port, &listens, &target) {
        (None, _, Ok(t)) => Check::skip(
            "listening",
            format!("the gateway {} is on another host", t.url),
        ),
        (_, Err(e), _) => Check::skip("listening", e),
        (Some(p), Ok(l), _) => net::listening(p, &net::addrs_on(l, p), tls_on),
        (None, Ok(_), Err(_)) => Check::skip("listening", "no port"),
    };
    let base = port.unwrap_or(local.port);
    vec![
        local.config.clone(),
        listening,
        gateway,
        token_file_check(&local),
        tunnels_check(&local, st.as_ref(), here),
        tailscale_check(&local, st.as_ref(), here),
        firewall_check(base),
        tls_check(&local, st.as_ref()),
        audit_check(&local, st.as_ref(), here),
        cdp_check(base, &listens),
    ]
}

/// Whether `pid` is an `openclaw` process on this machine (a loopback URL may be a tunnel to
/// another host with the same state dir path).
fn runs_here(pid: Option<u64>) -> bool {
    pid.and_then(|p| std::fs::read(format!("/proc/{p}/cmdline")).ok())
        .is_some_and(|c| String::from_utf8_lossy(&c).contains("openclaw"))
}

/// Check 2: connect with the resolved target and credentials and call `status`.
fn gateway_check(target: &Result<Target, String>, args: &TargetArgs) -> (Check, Option<Value>) {
    let t = match target {
        Ok(t) => t,
        Err(e) => {
            let fix = "fix the config, or pass --gateway URL and --token";
            return (Check::fail("gateway", e.clone(), fix), None);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let c = Check::fail("gateway", format!("cannot start the runtime: {e}"), "retry");
            return (c, None);
        }
    };
    let res = rt.block_on(super::call_once(
        t,
        args,
        &["operator.read"],
        "status",
        json!({}),
    ));
    match res {
        Ok((_, st)) => (host::gateway_ok(&t.url, &t.creds_source, &st), Some(st)),
        Err(e) => (host::gateway_failed(e.message(), t.is_loopback()), None),
    }
}

/// LISTEN sockets from `/proc/net/tcp` and `/proc/net/tcp6` (either may be missing).
fn read_listens() -> Result<Vec<Listen>, String> {
    let mut out = Vec::new();
    let mut read_any = false;
    let mut err = String::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(f) {
            Ok(text) => {
                read_any = true;
                out.extend(net::parse_proc_net_tcp(&text));
            }
            Err(e) if err.is_empty() => err = format!("cannot read {f}: {e}"),
            Err(_) => {}
        }
    }
    if read_any {
        Ok(out)
    } else {
        Err(err)
    }
}

/// Check 3: modes of the runtime token file and the config file.
fn token_file_check(local: &Local) -> Check {
    let Some(paths) = &local.paths else {
        return Check::skip("token file", "no state dir (see the config check)");
    };
    let token = openclaw_actors::state::runtime_token_path(&paths.state_dir);
    let files = [
        ("runtime token", &token),
        ("config file", &paths.config_path),
    ]
    .map(|(what, p)| (what, p.display().to_string(), sys::mode(p)));
    host::file_modes(&files)
}

/// Check 4: tunnel rows from the gateway (or `openclaw tunnel run`'s status file), with
/// `ssh -v` for the broken ones that run on this machine.
fn tunnels_check(local: &Local, st: Option<&Value>, here: bool) -> Check {
    let configured = local.file.tunnels.as_ref().map_or(0, Vec::len);
    let (rows, here) = match st {
        Some(s) => (s["tunnels"].as_array().cloned().unwrap_or_default(), here),
        None => {
            let file = local
                .state_dir()
                .map(|d| d.join("tunnels").join("status.json"));
            let doc = file
                .and_then(|f| std::fs::read_to_string(f).ok())
                .and_then(|s| serde_json::from_str::<Value>(&s).ok());
            match doc {
                Some(d) => (d["tunnels"].as_array().cloned().unwrap_or_default(), true),
                None if configured > 0 => {
                    return Check::skip(
                        "tunnels",
                        format!("{configured} configured, but no gateway answered and no `openclaw tunnel run` status file"),
                    )
                }
                None => (Vec::new(), false),
            }
        }
    };
    let mut ssh_v = BTreeMap::new();
    if here {
        for r in rows.iter().filter(|r| tunnels::tunnel_broken(r)) {
            let name = r["name"].as_str().unwrap_or("").to_string();
            if let Some(argv) = ssh_argv_for(local, &name, r) {
                ssh_v.insert(name, ssh_verbose(&argv));
            }
        }
    }
    tunnels::tunnels(&rows, &ssh_v)
}

/// The `ssh -v` argv for tunnel `name`: from the local config when it has it, else from the
/// row's `… via target`.
fn ssh_argv_for(local: &Local, name: &str, row: &Value) -> Option<Vec<String>> {
    let cfg_path = local.paths.as_ref().map(|p| p.config_path.clone())?;
    let spec = local
        .file
        .tunnels
        .as_deref()
        .and_then(|t| openclaw_actors::config::tunnels::validate(t, &cfg_path).ok())
        .and_then(|specs| specs.into_iter().find(|s| s.name == name));
    Some(match spec {
        Some(s) => tunnels::ssh_probe_argv(
            &s.target,
            s.ssh_port,
            s.identity_file.as_deref(),
            s.known_hosts_file.as_deref(),
            &s.options,
        ),
        None => {
            let target = tunnels::target_from_forward(row["forward"].as_str()?)?;
            tunnels::ssh_probe_argv(&target, None, None, None, &BTreeMap::new())
        }
    })
}

/// Runs `ssh -v … true` (bounded) and keeps the relevant lines.
fn ssh_verbose(argv: &[String]) -> Vec<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let program = env(SSH_ENV)
        .or_else(|| env("OPENCLAW_SSH"))
        .unwrap_or_else(|| "ssh".into());
    let Some(bin) = sys::which(&program) else {
        return vec![format!("(ssh -v not run: {program} not found)")];
    };
    match sys::run(&bin, argv, SSH_TIMEOUT) {
        Ok(r) => {
            let lines = tunnels::relevant_ssh_lines(&r.stderr, SSH_LINES);
            if lines.is_empty() {
                vec![format!("(ssh -v: {})", r.why())]
            } else {
                lines
            }
        }
        Err(e) => vec![format!("(ssh -v: {e})")],
    }
}

/// Check 5: only with `gateway.tailscale.mode` serve or funnel.
fn tailscale_check(local: &Local, st: Option<&Value>, here: bool) -> Check {
    let gw = st.filter(|_| here).map(|s| &s["tailscale"]);
    let cfg_mode = local
        .file
        .gateway
        .tailscale
        .as_ref()
        .and_then(|t| t.mode.as_deref());
    let Some(mode) = host::tailscale_mode(cfg_mode, gw.and_then(|g| g["mode"].as_str())) else {
        return Check::skip("tailscale", "gateway.tailscale.mode is off");
    };
    let Some(bin) = sys::on_path("tailscale") else {
        return Check::fail(
            "tailscale",
            format!("gateway.tailscale.mode is {mode} but `tailscale` is not on PATH"),
            host::TAILSCALE_INSTALL,
        );
    };
    use openclaw_actors::tailscale::parse::{json_in, serve_status_argv, status_argv};
    let ask = |argv: Vec<String>| -> Result<Value, String> {
        let r = sys::run(&bin, &argv, TOOL_TIMEOUT)?;
        if !r.success() {
            return Err(r.why());
        }
        json_in(&r.stdout).ok_or_else(|| "no JSON in its output".to_string())
    };
    let backend = ask(status_argv()).and_then(|v| {
        host::backend_state(&v).ok_or_else(|| "no BackendState in its output".to_string())
    });
    let routes = ask(serve_status_argv()).map(|v| host::serve_routes(&v));
    host::tailscale(&mode, backend, routes, gw)
}

/// Check 6: firewall listings that mention the port.
fn firewall_check(port: u16) -> Check {
    let tools: [(&str, &[&str]); 4] = [
        ("iptables", &["-S"]),
        ("ip6tables", &["-S"]),
        ("nft", &["list", "ruleset"]),
        ("ufw", &["status"]),
    ];
    let sources: Vec<(&str, Result<String, String>)> = tools
        .iter()
        .map(|(tool, args)| {
            let r = match sys::which(tool) {
                None => Err("not installed".to_string()),
                Some(bin) => {
                    let argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                    sys::run(&bin, &argv, TOOL_TIMEOUT).and_then(|r| {
                        if r.success() {
                            Ok(r.stdout)
                        } else {
                            Err(r.why())
                        }
                    })
                }
            };
            (*tool, r)
        })
        .collect();
    net::firewall(port, &sources)
}

/// Check 7: the served certificate's expiry (from `status`, or the configured file when no
/// gateway answered).
fn tls_check(local: &Local, st: Option<&Value>) -> Check {
    let now = openclaw_actors::shared::now_ms();
    if let Some(s) = st {
        let t = &s["tls"];
        if t["enabled"] != true {
            return Check::skip("tls", "TLS is off (gateway.tls.enabled)");
        }
        return host::tls(
            t["notAfter"].as_i64(),
            now,
            t["certPath"].as_str().unwrap_or("the certificate"),
        );
    }
    if local.file.gateway.tls.as_ref().and_then(|t| t.enabled) != Some(true) {
        return Check::skip("tls", "TLS is off (gateway.tls.enabled)");
    }
    let Some(paths) = &local.paths else {
        return Check::skip("tls", "no config paths");
    };
    let env = |k: &str| std::env::var(k).ok();
    let resolved =
        openclaw_actors::config::tls::resolve_tls(&local.file, paths, &paths.config_path, &env);
    let cert = match resolved {
        Ok(Some(t)) => t.cert_path,
        Ok(None) => return Check::skip("tls", "TLS is off"),
        Err(e) => {
            let fix = "fix gateway.tls (openclaw config validate)";
            return Check::fail("tls", e.to_string(), fix);
        }
    };
    let shown = cert.display().to_string();
    use openclaw_actors::tls::{material, PemCert};
    match material::read_bounded(&cert, "certificate") {
        Ok(pem) => {
            let end = PemCert::first(&pem)
                .and_then(|der| material::not_after(&der))
                .map(|s| s * 1000);
            host::tls(end, now, &shown)
        }
        Err(e) => Check::warn(
            "tls",
            format!("TLS on, but {e}"),
            "start the gateway once to generate it (gateway.tls.autoGenerate), or fix gateway.tls.certPath",
        ),
    }
}

/// Check 8: the audit log opens for append, and its filesystem has room.
fn audit_check(local: &Local, st: Option<&Value>, here: bool) -> Check {
    let from_status = st
        .filter(|_| here)
        .and_then(|s| s["audit"]["file"].as_str())
        .map(PathBuf::from);
    let path = match (from_status, local.state_dir(), here) {
        (Some(p), _, _) => p,
        (None, Some(d), true) => d.join("logs").join("audit.jsonl"),
        (None, _, false) => {
            return Check::skip(
                "audit",
                "the gateway runs on another host (see its own doctor)",
            )
        }
        (None, None, true) => return Check::skip("audit", "no state dir (see the config check)"),
    };
    let writable = sys::append_ok(&path);
    let free = match path.parent().and_then(sys::existing_dir) {
        None => Err("no existing directory".to_string()),
        Some(dir) => match sys::which("df") {
            None => Err("df not found".to_string()),
            Some(df) => {
                let argv = ["-Pk".to_string(), dir.display().to_string()];
                sys::run(&df, &argv, TOOL_TIMEOUT)
                    .and_then(|r| host::parse_df_available(&r.stdout).ok_or_else(|| r.why()))
            }
        },
    };
    let errors = st
        .filter(|_| here)
        .and_then(|s| s["audit"]["writeErrors"].as_u64());
    host::audit(&path.display().to_string(), writable, free, errors)
}

/// Check 9: the browser CDP ports derived from the gateway port are not exposed.
fn cdp_check(port: u16, listens: &Result<Vec<Listen>, String>) -> Check {
    let Some(p) = super::admin::derive(port) else {
        return Check::skip("cdp", format!("port {port} has no CDP range"));
    };
    match listens {
        Ok(l) => net::cdp(p.cdp_first, p.cdp_last, l),
        Err(e) => Check::skip("cdp", e),
    }
}
