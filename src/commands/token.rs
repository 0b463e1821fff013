//! `openclaw token rotate`: writes a new token where this machine's gateway reads it, has
//! the running gateway apply it without a restart, and says who needs the new value.
//!
//! Where: resolved as `openclaw gateway` would (this process's environment): the runtime
//! token file (`<stateDir>/gateway.token`, rewritten atomically, 0600), or a literal
//! `gateway.auth.token` in the config file (replaced in place: every other byte, the mode and
//! the owner kept). A token from an environment variable (`OPENCLAW_GATEWAY_TOKEN`, or a
//! `${VAR}` in the file) or from `--token` cannot be rewritten from here: exit 2, nothing
//! changed, and what to change instead.
//!
//! Apply: the CLI connects with the old token *before* writing (so a file watcher that
//! reloads first cannot lock it out), writes, then calls `gateway.reload` on that same
//! connection (audited `token.rotated` + `config.reload`), and checks that a new connection
//! with the new token is accepted. Open connections stay; new ones need the new token. With
//! no gateway running, the token applies at its next start.

mod literal;

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use openclaw_actors::config::load::parse_str;
use openclaw_actors::config::{self, AuthMode, Inputs, Settings, Source};
use openclaw_actors::secret::{Secret, MASK};
use openclaw_actors::state;
use serde_json::{json, Value};

use literal::{env_vars, replace_token_literal};

use super::{block_on, print_json};
use crate::cli::Global;
use crate::client::{ClientError, Conn};
use crate::target::{Target, TargetArgs};

const CMD: &str = "openclaw token rotate";

/// `openclaw token rotate` flags.
#[derive(Debug, Clone, Default)]
pub struct RotateOpts {
    /// Print JSON.
    pub json: bool,
    /// Print the new token (once).
    pub show: bool,
    /// Connect timeout in milliseconds.
    pub timeout: u64,
}

/// Where the token is written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Home {
    /// `<stateDir>/gateway.token`.
    RuntimeFile(PathBuf),
    /// A literal `gateway.auth.token` in this config file.
    Config(PathBuf),
}

/// What happened at the running gateway.
enum Applied {
    /// No gateway answered (connection refused).
    NotRunning,
    /// `gateway.reload`'s outcome and whether a new connection with the new token got in.
    Reloaded { outcome: Value, verified: bool },
}

// === impl Home ===

impl Home {
    fn kind(&self) -> &'static str {
        match self {
            Home::RuntimeFile(_) => "runtimeFile",
            Home::Config(_) => "config",
        }
    }

    fn path(&self) -> &Path {
        match self {
            Home::RuntimeFile(p) | Home::Config(p) => p,
        }
    }

    fn describe(&self) -> String {
        match self {
            Home::RuntimeFile(p) => format!("{} (runtime token file)", p.display()),
            Home::Config(p) => format!("{} (gateway.auth.token)", p.display()),
        }
    }
}

/// `openclaw token rotate`. Exit 0 rotated (and applied, when a gateway runs), 1 the
/// gateway could not be asked or did not apply it, 2 nothing to rotate here.
pub fn rotate(global: &Global, o: &RotateOpts) -> i32 {
    let settings = match resolve_settings(global) {
        Ok(s) => s,
        Err(e) => return refuse(&e),
    };
    let (home, old) = match locate(&settings) {
        Ok(x) => x,
        Err(e) => return refuse(&e),
    };
    let min = settings
        .file
        .gateway
        .auth
        .token_validation
        .as_ref()
        .and_then(|r| r.min_length)
        .unwrap_or(0);
    let new = Secret::new(state::generate_token(min.max(state::RUNTIME_TOKEN_LEN)));
    block_on(async move {
        let target = match local_target(global, &home, &old, o.timeout) {
            Ok(t) => t,
            Err(e) => return refuse(&e),
        };
        let applied = match rotate_and_apply(&target, &home, &old, &new, o.timeout).await {
            Ok(a) => a,
            Err((code, e)) => {
                eprintln!("{CMD}: {e}");
                return code;
            }
        };
        report(&home, &applied, &new, o)
    })
}

fn refuse(msg: &str) -> i32 {
    eprintln!("{CMD}: {msg}");
    2
}

/// The settings `openclaw gateway` would resolve here (profile, env, config file).
fn resolve_settings(global: &Global) -> Result<Settings, String> {
    let inputs = Inputs {
        profile: global.profile.clone(),
        dev: global.dev,
        ..Default::default()
    };
    let env = |k: &str| std::env::var(k).ok();
    config::resolve(&inputs, &env).map_err(|e| format!("{e} (nothing was changed)"))
}

/// Where the gateway reads its token and the value in force there; an error says what to
/// change instead when it cannot be rewritten from here.
fn locate(s: &Settings) -> Result<(Home, Option<Secret>), String> {
    if s.auth.mode != AuthMode::Token {
        let mode = format!("{:?}", s.auth.mode).to_lowercase();
        return Err(format!(
            "the gateway's auth mode is {mode} ({}): there is no token to rotate",
            s.auth.source
        ));
    }
    match &s.auth.source {
        Source::Env(var) => Err(not_writable_env(var, &s.paths.config_path)),
        Source::Flag(flag) => Err(not_writable_flag(flag)),
        Source::File(path, _) => {
            let vars = raw_token_vars(path)?;
            if !vars.is_empty() {
                return Err(not_writable_file_var(&vars, path));
            }
            Ok((Home::Config(path.clone()), s.auth.token.clone()))
        }
        Source::Default => {
            let p = state::runtime_token_path(&s.paths.state_dir);
            let old = state::read_runtime_token(&s.paths.state_dir);
            Ok((Home::RuntimeFile(p), old))
        }
    }
}

/// The `${VAR}`s of `gateway.auth.token` as written in the file (empty: a literal).
fn raw_token_vars(path: &Path) -> Result<Vec<String>, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let keep = |k: &str| Some(format!("${{{k}}}"));
    let raw = parse_str(&text, path, &keep).map_err(|e| e.to_string())?;
    Ok(raw
        .gateway
        .auth
        .token
        .map(|t| env_vars(t.expose()))
        .unwrap_or_default())
}

fn not_writable_env(var: &str, cfg: &Path) -> String {
    format!(
        "the gateway token comes from the environment variable {var}, which cannot be rewritten \
         from here. Set a new value where {var} is defined for the gateway (its systemd unit's \
         Environment=, its container env or shell profile), e.g. {var}=$(openclaw token generate), \
         restart the gateway, and give the value to its clients. (If the gateway itself reads \
         {} or the runtime token file, unset {var} in this shell and run this again.) \
         Nothing was changed",
        cfg.display()
    )
}

fn not_writable_flag(flag: &str) -> String {
    format!(
        "the gateway token comes from the {flag} flag, which cannot be rewritten from here: \
         restart the gateway with a new {flag} value (openclaw token generate) and give it to \
         its clients. Nothing was changed"
    )
}

fn not_writable_file_var(vars: &[String], cfg: &Path) -> String {
    let list = vars.join(", ");
    format!(
        "gateway.auth.token in {} is taken from the environment variable(s) {list} (${{...}}), \
         which cannot be rewritten from here: set a new value for {list} where the gateway's \
         environment is defined (e.g. $(openclaw token generate)), restart the gateway, and give \
         the value to its clients. Nothing was changed",
        cfg.display()
    )
}

/// The active profile's local gateway, authenticated with the token in force.
fn local_target(
    global: &Global,
    home: &Home,
    old: &Option<Secret>,
    timeout: u64,
) -> Result<Target, String> {
    let args = TargetArgs {
        timeout,
        ..Default::default()
    };
    let mut t =
        crate::target::resolve(&args, global).map_err(|e| format!("{e} (nothing was changed)"))?;
    if !t.local {
        return Err(format!(
            "{} points at another gateway ({}); token rotate works on this machine's gateway: \
             unset it, or run this on the gateway host. Nothing was changed",
            t.source, t.url
        ));
    }
    t.token = old.clone();
    t.password = None;
    t.creds_source = home.describe();
    Ok(t)
}

/// Connects with the old token (a refused connection: no gateway), writes the new token,
/// and has the gateway reload. Errors carry the exit code.
async fn rotate_and_apply(
    t: &Target,
    home: &Home,
    old: &Option<Secret>,
    new: &Secret,
    timeout: u64,
) -> Result<Applied, (i32, String)> {
    let wait = Duration::from_millis(timeout.max(1));
    let conn = match Conn::open(t, &["operator.admin"], wait).await {
        Ok(c) => Some(c),
        Err(ClientError::Unreachable(m)) if m.starts_with("connection refused") => None,
        Err(ClientError::Auth(m)) => return Err((2, refused_old(home, old.is_some(), &m))),
        Err(e) => {
            let m = e.message();
            return Err((
                1,
                format!("{m} (cannot tell whether the gateway runs; nothing was changed)"),
            ));
        }
    };
    let Some(mut conn) = conn else {
        write_token(home, old, new).map_err(|e| (1, e))?;
        return Ok(Applied::NotRunning);
    };
    if let Err(e) = check_same_home(&mut conn, home).await {
        conn.close().await;
        return Err((2, e));
    }
    if let Err(e) = write_token(home, old, new) {
        conn.close().await;
        return Err((1, e));
    }
    let params =
        json!({"tokenRotated": {"source": home.kind(), "path": home.path().display().to_string()}});
    let outcome = conn.call("gateway.reload", params).await;
    conn.close().await;
    let outcome = outcome.map_err(|e| {
        (
            1,
            format!(
            "the new token is written to {}, but the reload failed: {} — send the gateway SIGHUP \
             or restart it",
            home.describe(),
            e.message()
        ),
        )
    })?;
    let mut fresh = t.clone();
    fresh.token = Some(new.clone());
    let verified = match Conn::open(&fresh, &["operator.read"], wait).await {
        Ok(c) => {
            c.close().await;
            true
        }
        Err(_) => false,
    };
    Ok(Applied::Reloaded { outcome, verified })
}

fn refused_old(home: &Home, had: bool, why: &str) -> String {
    let what = if had {
        "refused the token from"
    } else {
        "needs a token, but there is none in"
    };
    format!(
        "the running gateway {what} {} ({why}): it reads its token elsewhere — \
         started with --token, or with OPENCLAW_GATEWAY_TOKEN in its own environment (see \
         `openclaw gateway call config.get` → effective.authSource). Nothing was changed",
        home.describe()
    )
}

/// Refuses when the running gateway says it reads its token from somewhere else than what
/// this process resolved (e.g. started with `--token`, or another environment).
async fn check_same_home(conn: &mut Conn, home: &Home) -> Result<(), String> {
    let Ok(cfg) = conn.call("config.get", json!({})).await else {
        return Ok(()); // older gateways: the old token got in, which is evidence enough
    };
    let src = &cfg["effective"]["authSource"];
    let Some(kind) = src["kind"].as_str() else {
        return Ok(());
    };
    let same_path = src["path"].as_str().map(PathBuf::from).is_some_and(|p| {
        let canon = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        canon(&p) == canon(home.path())
    });
    if kind == home.kind() && same_path {
        return Ok(());
    }
    let name = src["name"].as_str().unwrap_or("?");
    Err(match kind {
        "flag" => not_writable_flag(name),
        "env" => not_writable_env(name, home.path()),
        _ => format!(
            "the running gateway reads its token from {} ({kind}), not {}: run this with the \
             gateway's own environment and profile. Nothing was changed",
            src["path"].as_str().unwrap_or("?"),
            home.describe()
        ),
    })
}

/// Writes `new` where the gateway reads it.
fn write_token(home: &Home, old: &Option<Secret>, new: &Secret) -> Result<(), String> {
    match home {
        Home::RuntimeFile(p) => {
            state::write_private_atomic(p, format!("{}\n", new.expose()).as_bytes())
                .map_err(|e| format!("cannot write {}: {e}; nothing was changed", p.display()))
        }
        Home::Config(p) => rewrite_config(p, old, new),
    }
}

/// Replaces the literal token in the config file in place, after checking that the result
/// still parses and now resolves to the new token.
fn rewrite_config(path: &Path, old: &Option<Secret>, new: &Secret) -> Result<(), String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let old = old.as_ref().map(Secret::expose).unwrap_or_default();
    let out = replace_token_literal(&text, old, new.expose()).map_err(|e| {
        format!(
            "cannot replace gateway.auth.token in {} in place: {e}. Put a new token there by \
             hand (openclaw token generate) and reload the gateway (SIGHUP). Nothing was changed",
            path.display()
        )
    })?;
    let env = |k: &str| std::env::var(k).ok();
    let parsed = parse_str(&out, path, &env)
        .map_err(|e| format!("the edited file would not load ({e}); nothing was changed"))?;
    if parsed.gateway.auth.token.as_ref().map(Secret::expose) != Some(new.expose()) {
        return Err(format!(
            "the edit would not change gateway.auth.token in {}; nothing was changed",
            path.display()
        ));
    }
    write_keeping_mode(path, out.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}; nothing was changed", path.display()))
}

/// Replaces the file at `path` (a symlink's target) atomically with `data`, keeping its
/// permission bits and, where allowed, its owner and group.
fn write_keeping_mode(path: &Path, data: &[u8]) -> io::Result<()> {
    let target = fs::canonicalize(path)?;
    let meta = fs::metadata(&target)?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("config");
    let tmp = dir.join(format!(".{name}.rotate-{}", std::process::id()));
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        let _ = std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()));
        f.set_permissions(fs::Permissions::from_mode(
            meta.permissions().mode() & 0o7777,
        ))?;
        f.sync_all()?;
        fs::rename(&tmp, &target)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Who must be given the new value, and who not.
fn clients(home: &Home) -> Vec<String> {
    let local = match home {
        Home::RuntimeFile(p) => format!(
            "this machine's CLI (same profile) reads {} itself: nothing to do",
            p.display()
        ),
        Home::Config(p) => format!(
            "this machine's CLI (same profile) reads gateway.auth.token from {}: nothing to do",
            p.display()
        ),
    };
    vec![
        local,
        "remote CLIs: update gateway.remote.token in their config (or the OPENCLAW_GATEWAY_TOKEN / --token they pass)".into(),
        "node hosts (openclaw node) and scripts started with OPENCLAW_GATEWAY_TOKEN (or a copy of the old token): restart them with the new value".into(),
        "not needed: paired devices that sign in with their device token, and connections open now (they stay connected)".into(),
    ]
}

/// Prints the result; the token itself only with `--show`.
fn report(home: &Home, applied: &Applied, new: &Secret, o: &RotateOpts) -> i32 {
    let shown = if o.show { new.expose() } else { MASK };
    let (gateway, code) = match applied {
        Applied::NotRunning => (json!({"running": false}), 0),
        Applied::Reloaded { outcome, verified } => {
            let in_applied = outcome["applied"]
                .as_array()
                .is_some_and(|a| a.iter().any(|k| k == "gateway.auth.token"));
            let ok = outcome["ok"] == true && *verified;
            let g = json!({"running": true, "reload": outcome, "tokenApplied": in_applied, "newTokenAccepted": verified});
            (g, if ok { 0 } else { 1 })
        }
    };
    if o.json {
        print_json(&json!({
            "rotated": true,
            "source": {"kind": home.kind(), "path": home.path().display().to_string()},
            "token": shown, "gateway": gateway, "clients": clients(home),
        }));
        return code;
    }
    crate::out!("new token written to {}", home.describe());
    match applied {
        Applied::NotRunning => {
            crate::out!("the gateway is not running: the new token applies at its next start")
        }
        Applied::Reloaded { outcome, verified } => print_reload(outcome, *verified),
    }
    crate::out!("token: {shown}");
    crate::out!("who needs the new value:");
    for c in clients(home) {
        crate::out!("  - {c}");
    }
    code
}

fn print_reload(outcome: &Value, verified: bool) {
    if outcome["ok"] != true {
        let err = outcome["error"].as_str().unwrap_or("?");
        crate::out!("the gateway's reload failed: {err} — the new token is NOT in force; fix it and send SIGHUP");
        return;
    }
    let applied: Vec<&str> = outcome["applied"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let gen = &outcome["generation"];
    if applied.contains(&"gateway.auth.token") {
        crate::out!(
            "gateway reloaded (generation {gen}): applied {}",
            applied.join(", ")
        );
    } else {
        crate::out!("gateway reloaded (generation {gen}); gateway.auth.token was already applied by its config watcher");
    }
    if verified {
        crate::out!("checked: a new connection with the new token is accepted; open connections stay, new ones need the new token");
    } else {
        crate::out!("warning: a new connection with the new token was NOT accepted — check `openclaw logs --filter config`");
    }
}
