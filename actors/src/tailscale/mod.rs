//! The Tailscale actor (REMOTE-ACCESS-REFERENCE §2): with `gateway.tailscale.mode` serve or
//! funnel it opens the **managed listener** (plain HTTP on `127.0.0.1:<ephemeral>`, the only
//! place where Tailscale's proxy headers mean anything), checks the `tailscale` program and
//! daemon, adopts a route an older release left behind, and holds the route with a
//! long-lived `tailscale serve|funnel --yes --bg=false <port>` claim in its own process group.
//!
//! Unlike the real gateway it **supervises the claim**: when the claim exits while the
//! gateway runs, it is started again after a backoff (audited `tailscale.claim_exited` /
//! `tailscale.claim_restarted`). On stop the claim gets SIGTERM (SIGKILL after 2 s).
//!
//! It also answers `whois` for Tailscale identity auth: one `tailscale whois --json <ip>` per
//! IP at a time, cached 60 s (5 s after a failure), so a burst of connections from one
//! machine costs one lookup. Start-up failures refuse to start the gateway with one line that
//! says what to do.

pub mod parse;
pub mod process;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::{json, Value};

use crate::audit::{AuditEvent, AuditHandle};
use crate::config::tailscale::TailscaleSettings;
use crate::listener::http::HttpCtx;
use crate::shared::{lock, Hub};
use crate::supervisor::Backoff;
use crate::wiring::Peers;
use parse::{Failure, Mode, WhoisCache};
use process::Claim;

/// Backoff between claim restarts.
pub const CLAIM_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(500),
    max: Duration::from_secs(30),
    multiplier: 2.0,
    jitter: 0.2,
};
/// A claim that ran this long resets the backoff.
const CLAIM_STABLE: Duration = Duration::from_secs(60);
/// How long a claim has to print its ready line.
pub const CLAIM_READY_WITHIN: Duration = Duration::from_secs(15);
/// Most distinct IPs with a whois in flight; past it lookups fail (auth falls through).
const MAX_WHOIS_IN_FLIGHT: usize = 64;

/// The Tailscale actor.
pub struct TailscaleActor;

/// Start-up arguments.
#[derive(Clone)]
pub struct TailscaleArgs {
    /// Mode, identity auth, binary.
    pub settings: TailscaleSettings,
    /// What the managed listener serves (with `managed` set).
    pub http: Arc<HttpCtx>,
    /// Audit producer.
    pub audit: AuditHandle,
    /// What `status` shows.
    pub table: Arc<TailscaleTable>,
}

/// Messages to the Tailscale actor.
pub enum TailscaleMsg {
    /// The verified login of the tailnet machine at `ip` (`None`: unknown or lookup failed).
    Whois {
        /// Client address (bare IP).
        ip: IpAddr,
        /// Answer.
        reply_to: RpcReplyPort<Option<String>>,
    },
    /// A whois lookup ended.
    WhoisDone {
        /// Client address.
        ip: IpAddr,
        /// Login, if any.
        login: Option<String>,
        /// Error text, if it failed.
        error: Option<String>,
    },
    /// The claim of generation `gen` exited.
    ClaimExited {
        /// Claim generation.
        gen: u64,
        /// `exit 1`, `signal 9`, …
        status: String,
        /// Its last output line.
        last: Option<String>,
    },
    /// Timer: start the claim again.
    RestartClaim {
        /// Generation to start.
        gen: u64,
    },
    /// A restarted claim is ready (or failed to start).
    ClaimStarted {
        /// Generation.
        gen: u64,
        /// The claim, or why it failed.
        result: Result<Claim, String>,
    },
}

/// What `status` shows about Tailscale.
#[derive(Debug, Default)]
pub struct TailscaleTable {
    inner: Mutex<Value>,
}

impl TailscaleTable {
    /// `status.tailscale` (`{mode: "off"}` when off).
    pub fn status(&self) -> Value {
        let v = lock(&self.inner).clone();
        if v.is_object() {
            v
        } else {
            json!({"mode": "off"})
        }
    }

    fn update(&self, f: impl FnOnce(&mut Value)) {
        let mut v = lock(&self.inner);
        if !v.is_object() {
            *v = json!({});
        }
        f(&mut v);
    }

    /// The managed listener's port (0 before start).
    pub fn managed_port(&self) -> u16 {
        lock(&self.inner)["managedPort"].as_u64().unwrap_or(0) as u16
    }
}

/// State.
pub struct TailscaleState {
    args: TailscaleArgs,
    accept: AbortOnDrop,
    claim: Option<Claim>,
    claim_since: Instant,
    gen: u64,
    restarts: u64,
    attempt: u32,
    cache: WhoisCache,
    waiting: HashMap<IpAddr, Vec<RpcReplyPort<Option<String>>>>,
}

/// Aborts the managed listener's accept loop when dropped.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}

/// Reference to the Tailscale actor.
pub type TailscaleRef = ActorRef<TailscaleMsg>;

/// Starts the Tailscale actor linked to `supervisor`; fails (refusing start-up) when the
/// route cannot be claimed.
pub async fn spawn(
    args: TailscaleArgs,
    supervisor: ActorCell,
) -> Result<TailscaleRef, ractor::SpawnErr> {
    Ok(Actor::spawn_linked(None, TailscaleActor, args, supervisor)
        .await?
        .0)
}

// === impl TailscaleArgs ===

impl TailscaleArgs {
    /// The parts of `hub` the actor uses, and a managed-listener HTTP context.
    pub fn from_hub(hub: &Hub, peers: &Peers, settings: TailscaleSettings) -> Self {
        Self {
            http: Arc::new(HttpCtx {
                hub: hub.clone(),
                sessions: peers.sessions.clone(),
                managed: Some(settings.mode),
            }),
            audit: hub.audit.clone(),
            table: hub.tailscale.clone(),
            settings,
        }
    }
}

impl TailscaleMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            TailscaleMsg::Whois { .. } => "Whois",
            TailscaleMsg::WhoisDone { .. } => "WhoisDone",
            TailscaleMsg::ClaimExited { .. } => "ClaimExited",
            TailscaleMsg::RestartClaim { .. } => "RestartClaim",
            TailscaleMsg::ClaimStarted { .. } => "ClaimStarted",
        }
    }
}

impl Actor for TailscaleActor {
    type Msg = TailscaleMsg;
    type State = TailscaleState;
    type Arguments = TailscaleArgs;

    async fn pre_start(
        &self,
        me: TailscaleRef,
        args: TailscaleArgs,
    ) -> Result<TailscaleState, ActorProcessingErr> {
        let mode = args.settings.mode;
        // A restart keeps the port when it can, so the route need not move.
        let want = SocketAddr::from(([127, 0, 0, 1], args.table.managed_port()));
        let listener = match tokio::net::TcpListener::bind(want).await {
            Ok(l) => l,
            Err(_) => tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?,
        };
        let port = listener.local_addr()?.port();
        let accept = AbortOnDrop(Some(tokio::spawn(crate::listener::accept_loop(
            listener,
            args.http.clone(),
        ))));
        args.table.update(|v| {
            *v = json!({
                "mode": mode.as_str(), "managedPort": port, "state": "starting",
                "identityAuth": args.settings.identity_auth, "restarts": 0,
            })
        });
        tracing::info!(
            port,
            mode = mode.as_str(),
            "tailscale: managed listener on 127.0.0.1"
        );
        let gateway_port = args.http.hub.registry.port();
        let claim = match setup(&args, port, gateway_port, &me, 0).await {
            Ok(c) => c,
            Err(e) => {
                args.table.update(|v| {
                    v["state"] = json!("failed");
                    v["lastError"] = json!(e);
                });
                return Err(e.into());
            }
        };
        Ok(TailscaleState {
            args,
            accept,
            claim: Some(claim),
            claim_since: Instant::now(),
            gen: 0,
            restarts: 0,
            attempt: 0,
            cache: WhoisCache::default(),
            waiting: HashMap::new(),
        })
    }

    async fn post_stop(
        &self,
        _me: TailscaleRef,
        st: &mut TailscaleState,
    ) -> Result<(), ActorProcessingErr> {
        st.gen += 1; // exits from here on are expected
        if let Some(mut c) = st.claim.take() {
            tracing::info!(pid = c.pid, "tailscale: stopping the route claim (SIGTERM)");
            c.stop().await;
        }
        if let Some(t) = st.accept.0.take() {
            t.abort();
        }
        st.args.table.update(|v| {
            v["state"] = json!("stopped");
            v["claimPid"] = Value::Null;
        });
        Ok(())
    }

    async fn handle(
        &self,
        me: TailscaleRef,
        msg: TailscaleMsg,
        st: &mut TailscaleState,
    ) -> Result<(), ActorProcessingErr> {
        tracing::trace!(actor = "tailscale", msg = msg.kind(), "message");
        match msg {
            TailscaleMsg::Whois { ip, reply_to } => whois(&me, st, ip, reply_to),
            TailscaleMsg::WhoisDone { ip, login, error } => {
                st.cache.put(ip, login.clone(), Instant::now());
                let ev = AuditEvent::tailscale_whois(ip, login.as_deref(), error.as_deref());
                st.args.audit.record(ev).await;
                for r in st.waiting.remove(&ip).unwrap_or_default() {
                    let _ = r.send(login.clone());
                }
            }
            TailscaleMsg::ClaimExited { gen, status, last } if gen == st.gen => {
                st.claim = None;
                if st.claim_since.elapsed() >= CLAIM_STABLE {
                    st.attempt = 0;
                }
                let delay = CLAIM_BACKOFF.delay(st.attempt, rand::random());
                st.attempt = st.attempt.saturating_add(1);
                tracing::warn!(%status, last = ?last, retry_in_ms = delay.as_millis() as u64,
                    "tailscale: the route claim exited; managed Tailscale ingress is down until it is started again");
                let ev = AuditEvent::tailscale_claim_exited(&status, last.as_deref(), delay);
                st.args.audit.record(ev).await;
                st.args.table.update(|v| {
                    v["state"] = json!("restarting");
                    v["claimPid"] = Value::Null;
                    v["lastError"] = json!(format!(
                        "claim exited ({status}){}",
                        last.map(|l| format!(": {l}")).unwrap_or_default()
                    ));
                });
                st.gen += 1;
                let gen = st.gen;
                me.send_after(delay, move || TailscaleMsg::RestartClaim { gen });
            }
            TailscaleMsg::ClaimExited { .. } => {} // an earlier claim, already replaced
            TailscaleMsg::RestartClaim { gen } if gen == st.gen => {
                let (bin, args) = (st.args.settings.binary.clone(), claim_args(st));
                let me2 = me.clone();
                tokio::spawn(async move {
                    let exit_to = me2.clone();
                    let result =
                        Claim::start(&bin, &args, CLAIM_READY_WITHIN, move |status, last| {
                            let _ = exit_to.cast(TailscaleMsg::ClaimExited { gen, status, last });
                        })
                        .await
                        .map_err(|f| parse::explain(Mode::Serve, "serve", &f));
                    let _ = me2.cast(TailscaleMsg::ClaimStarted { gen, result });
                });
            }
            TailscaleMsg::RestartClaim { .. } => {}
            TailscaleMsg::ClaimStarted { gen, result } if gen == st.gen => match result {
                Ok(c) => {
                    st.restarts += 1;
                    st.claim_since = Instant::now();
                    tracing::info!(
                        pid = c.pid,
                        restarts = st.restarts,
                        "tailscale: route claim restarted"
                    );
                    let ev = AuditEvent::tailscale_claim_restarted(c.pid, st.restarts);
                    st.args.audit.record(ev).await;
                    let (pid, restarts) = (c.pid, st.restarts);
                    st.args.table.update(|v| {
                        v["state"] = json!("up");
                        v["claimPid"] = json!(pid);
                        v["restarts"] = json!(restarts);
                    });
                    st.claim = Some(c);
                }
                Err(e) => {
                    // Counts as another exit: back off and try again.
                    let _ = me.cast(TailscaleMsg::ClaimExited {
                        gen,
                        status: "failed to start".into(),
                        last: Some(e),
                    });
                }
            },
            TailscaleMsg::ClaimStarted { .. } => {} // stale (stopping, or superseded)
        }
        Ok(())
    }
}

fn claim_args(st: &TailscaleState) -> Vec<String> {
    parse::claim_argv(st.args.settings.mode, st.args.table.managed_port())
}

fn whois(
    me: &TailscaleRef,
    st: &mut TailscaleState,
    ip: IpAddr,
    reply: RpcReplyPort<Option<String>>,
) {
    if let Some(cached) = st.cache.get(ip, Instant::now()) {
        let _ = reply.send(cached);
        return;
    }
    if let Some(w) = st.waiting.get_mut(&ip) {
        w.push(reply);
        return;
    }
    if st.waiting.len() >= MAX_WHOIS_IN_FLIGHT {
        let _ = reply.send(None);
        return;
    }
    st.waiting.insert(ip, vec![reply]);
    let (bin, me) = (st.args.settings.binary.clone(), me.clone());
    tokio::spawn(async move {
        let res = process::run(&bin, &parse::whois_argv(ip), Duration::from_secs(5)).await;
        let (login, error) = match res {
            Ok(out) => match parse::json_in(&out).as_ref().and_then(parse::whois_login) {
                Some(l) => (Some(l), None),
                None => (None, Some("whois named no login".to_string())),
            },
            Err(f) => (None, Some(format!("{f:?}"))),
        };
        let _ = me.cast(TailscaleMsg::WhoisDone { ip, login, error });
    });
}

/// The start-up sequence (§2.2): version, daemon readiness, serve status (+ adoption), the
/// claim, then the name the tailnet knows us by.
async fn setup(
    args: &TailscaleArgs,
    port: u16,
    gateway_port: u16,
    me: &TailscaleRef,
    gen: u64,
) -> Result<Claim, String> {
    let s = &args.settings;
    let (mode, bin) = (s.mode, s.binary.as_path());
    let fail = |step: &str, f: Failure| parse::explain(mode, step, &f);
    let secs = Duration::from_secs;
    process::run(bin, &parse::version_argv(), secs(3))
        .await
        .map_err(|f| fail("version", f))?;
    wait_until_running(s).await?;
    let serve_status = process::run(bin, &parse::serve_status_argv(), secs(5))
        .await
        .map_err(|f| fail("serve status --json", f))?;
    if parse::json_in(&serve_status).is_some_and(|v| parse::adoptable(&v, gateway_port)) {
        process::run(bin, &parse::adopt_argv(), secs(5))
            .await
            .map_err(|f| fail("serve --yes --https=443 --set-path=/ off", f))?;
        tracing::info!("tailscale: route adopted from a previous OpenClaw release");
        args.audit
            .record(AuditEvent::tailscale_route_adopted(gateway_port))
            .await;
    }
    let argv = parse::claim_argv(mode, port);
    let exit_to = me.clone();
    let claim = Claim::start(bin, &argv, CLAIM_READY_WITHIN, move |status, last| {
        let _ = exit_to.cast(TailscaleMsg::ClaimExited { gen, status, last });
    })
    .await
    .map_err(|f| fail(&argv.join(" "), f))?;
    let mut name = None;
    for attempt in 0..3 {
        if let Ok(out) = process::run(bin, &parse::status_argv(), secs(3)).await {
            name = parse::json_in(&out).as_ref().and_then(parse::self_name);
        }
        if name.is_some() || attempt == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let url = name.as_ref().map(|n| format!("https://{n}/"));
    let m = mode.as_str();
    match &name {
        Some(n) => tracing::info!("tailscale {m} enabled: https://{n}/ (WS via wss://{n})"),
        None => tracing::warn!("tailscale {m} enabled, but the tailnet name is unknown"),
    }
    let pid = claim.pid;
    args.table.update(|v| {
        v["state"] = json!("up");
        v["claimPid"] = json!(pid);
        v["url"] = json!(url);
        v["host"] = json!(name);
    });
    let ev = AuditEvent::tailscale_claim_ready(m, port, pid, url.as_deref());
    args.audit.record(ev).await;
    Ok(claim)
}

/// `tailscale status --json` until the daemon is past `NoState`/`Starting` (every 2 s, up to
/// the ready timeout).
async fn wait_until_running(s: &TailscaleSettings) -> Result<(), String> {
    let deadline = Instant::now() + s.ready_timeout;
    loop {
        let res = process::run(&s.binary, &parse::status_argv(), Duration::from_secs(3)).await;
        let waiting = match &res {
            Ok(out) => match parse::json_in(out) {
                Some(v) if parse::still_starting(&v) => {
                    Some(v["BackendState"].as_str().unwrap_or("").to_string())
                }
                _ => None,
            },
            Err(Failure::Other(e)) | Err(Failure::Permission(e))
                if parse::daemon_unreachable(e) =>
            {
                Some("not reachable".into())
            }
            Err(Failure::Missing) => {
                return Err(parse::explain(s.mode, "status --json", &Failure::Missing))
            }
            Err(_) => None, // the real gateway carries on; serve status will say what is wrong
        };
        let Some(state) = waiting else { return Ok(()) };
        if Instant::now() >= deadline {
            return Err(format!(
                "tailscale {}: the local Tailscale daemon is still {state} after {} s; check \
                 `tailscale status` (is tailscaled running and logged in?)",
                s.mode.as_str(),
                s.ready_timeout.as_secs()
            ));
        }
        tracing::info!("tailscale: waiting for the local Tailscale daemon ({state})");
        tokio::time::sleep(
            Duration::from_secs(2).min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
    }
}
