//! The Tunnel actor: one per configured tunnel, a permanent child of the TunnelSupervisor.
//! The life of its ssh process is the pure [`machine`] (expected restarts: backoff, gate,
//! health-check kills); a crash of the actor itself is a bug handled by the supervisor. The
//! ssh process is owned by an [`ssh::SshProcess`] whose `Drop` kills the process group, so a
//! panicking actor leaves no ssh behind. Spawning, waiting and probing run in tasks that
//! report back by message; timers carry the ssh generation and stale ones are ignored.

pub mod machine;
pub mod probe;
pub mod ssh;
pub mod supervisor;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::{json, Value};

use crate::audit::{AuditEvent, AuditHandle};
use crate::config::tunnels::{Direction, TunnelSpec};
use crate::shared::TunnelTable;
use machine::{Action, Backoff, Machine, Phase};
use ssh::{Exit, SshProcess};

/// The ssh program (overridable for tests of exotic setups).
pub fn ssh_program() -> String {
    std::env::var("OPENCLAW_SSH").unwrap_or_else(|_| "ssh".into())
}

/// Name of a tunnel actor (logs, audit, the supervisor's child list).
pub fn actor_name(tunnel: &str) -> String {
    format!("tunnel.{tunnel}")
}

/// What a tunnel config reload changes (names, in config order).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// New tunnels.
    pub added: Vec<String>,
    /// Tunnels no longer configured.
    pub removed: Vec<String>,
    /// Tunnels whose settings changed (restarted).
    pub changed: Vec<String>,
}

/// Compares the running tunnels with the configured ones. Pure.
pub fn reload_plan(
    running: &std::collections::BTreeMap<String, crate::config::tunnels::TunnelSpec>,
    wanted: &[crate::config::tunnels::TunnelSpec],
) -> ReloadPlan {
    let mut p = ReloadPlan::default();
    for t in wanted {
        match running.get(&t.name) {
            None => p.added.push(t.name.clone()),
            Some(old) if old != t => p.changed.push(t.name.clone()),
            Some(_) => {}
        }
    }
    p.removed = running
        .keys()
        .filter(|n| !wanted.iter().any(|t| &t.name == *n))
        .cloned()
        .collect();
    p
}

/// Probe cadence while a new ssh is starting (so "up" is known within ~200 ms).
pub const STARTING_PROBE: Duration = Duration::from_millis(200);
/// A start that is not up by then is killed and retried.
pub const STARTING_LIMIT: Duration = Duration::from_secs(30);

/// The tunnel actor.
pub struct TunnelActor;

/// What every tunnel actor (and their supervisor) uses besides its spec.
#[derive(Clone)]
pub struct TunnelEnv {
    /// Where status rows are published.
    pub table: Arc<TunnelTable>,
    /// Audit producer.
    pub audit: AuditHandle,
    /// `<stateDir>/tunnels`: pid files and the status mirror.
    pub dir: std::path::PathBuf,
    /// Tunnel actor restarts, for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

// === impl TunnelEnv ===

impl TunnelEnv {
    /// The parts of `hub` the tunnels use.
    pub fn from_hub(hub: &crate::shared::Hub) -> Self {
        Self {
            table: hub.tunnels.clone(),
            audit: hub.audit.clone(),
            dir: hub.settings().paths.state_dir.join("tunnels"),
            metrics: hub.metrics.clone(),
        }
    }
}

/// Start-up arguments.
#[derive(Clone)]
pub struct TunnelArgs {
    /// The tunnel.
    pub spec: TunnelSpec,
    /// Status table, audit, state directory.
    pub env: TunnelEnv,
}

/// Reference to a tunnel actor.
pub type TunnelRef = ActorRef<TunnelMsg>;

/// Starts a tunnel actor linked to `supervisor`.
pub async fn spawn(
    args: TunnelArgs,
    supervisor: ractor::ActorCell,
) -> Result<TunnelRef, ractor::SpawnErr> {
    Ok(Actor::spawn_linked(None, TunnelActor, args, supervisor)
        .await?
        .0)
}

/// Messages to a tunnel.
pub enum TunnelMsg {
    /// Start ssh (first start, and each retry timer).
    Start,
    /// ssh generation `gen` ended.
    Exited {
        /// Generation.
        gen: u64,
        /// How.
        exit: Exit,
    },
    /// Timer: probe the forward.
    ProbeTick,
    /// A probe of generation `gen` finished.
    ProbeResult {
        /// Generation.
        gen: u64,
        /// Outcome.
        result: Result<(), String>,
    },
    /// Unprobed (remote) tunnels: alive past the gate counts as up.
    AliveCheck {
        /// Generation.
        gen: u64,
    },
    /// Operator request: restart now.
    Restart,
    /// Test-only: panic in the handler.
    #[cfg(feature = "fault-injection")]
    Panic,
}

/// State. Dropping it (stop, panic, kill) drops the ssh owner, which kills the group.
pub struct TunnelState {
    spec: TunnelSpec,
    env: TunnelEnv,
    machine: Machine,
    ssh: Option<SshProcess>,
    gen: u64,
    probing: bool,
    retry: Option<tokio::task::JoinHandle<Result<(), ractor::MessagingErr<TunnelMsg>>>>,
}

impl TunnelMsg {
    /// Message kind for tracing.
    pub fn kind(&self) -> &'static str {
        match self {
            TunnelMsg::Start => "Start",
            TunnelMsg::Exited { .. } => "Exited",
            TunnelMsg::ProbeTick => "ProbeTick",
            TunnelMsg::ProbeResult { .. } => "ProbeResult",
            TunnelMsg::AliveCheck { .. } => "AliveCheck",
            TunnelMsg::Restart => "Restart",
            #[cfg(feature = "fault-injection")]
            TunnelMsg::Panic => "Panic",
        }
    }
}

impl Actor for TunnelActor {
    type Msg = TunnelMsg;
    type State = TunnelState;
    type Arguments = TunnelArgs;

    async fn pre_start(
        &self,
        me: ActorRef<TunnelMsg>,
        a: TunnelArgs,
    ) -> Result<TunnelState, ActorProcessingErr> {
        reap_stale(&a.env.dir, &a.spec.name);
        let s = &a.spec;
        let backoff = Backoff {
            initial: s.backoff_initial,
            max: s.backoff_max,
            multiplier: s.backoff_multiplier,
            jitter: s.backoff_jitter,
        };
        if s.probe.is_some() {
            me.send_interval(s.probe_interval, || TunnelMsg::ProbeTick);
        }
        let _ = me.cast(TunnelMsg::Start);
        Ok(TunnelState {
            machine: Machine::new(backoff, s.reset_after, s.gate_time, s.probe_failures),
            spec: a.spec,
            env: a.env,
            ssh: None,
            gen: 0,
            probing: false,
            retry: None,
        })
    }

    async fn handle(
        &self,
        me: ActorRef<TunnelMsg>,
        msg: TunnelMsg,
        st: &mut TunnelState,
    ) -> Result<(), ActorProcessingErr> {
        tracing::trace!(actor = "tunnel", tunnel = %st.spec.name, msg = msg.kind(), "message");
        let before = st.machine.phase;
        match msg {
            TunnelMsg::Start => start(&me, st),
            TunnelMsg::Exited { gen, exit } if gen == st.gen => on_exit(&me, st, exit),
            TunnelMsg::ProbeTick => probe_tick(&me, st),
            TunnelMsg::ProbeResult { gen, result } if gen == st.gen => {
                st.probing = false;
                match result {
                    Ok(()) => st.machine.proven_up(Instant::now()),
                    Err(why) => {
                        let a = st.machine.probe_failed(&why);
                        apply(&me, st, a);
                    }
                }
                if st.machine.phase == Phase::Starting {
                    // Not up yet: look again soon rather than at the next interval.
                    me.send_after(STARTING_PROBE, || TunnelMsg::ProbeTick);
                    let a = st.machine.starting_too_long(Instant::now(), STARTING_LIMIT);
                    apply(&me, st, a);
                }
            }
            TunnelMsg::ProbeResult { .. } => st.probing = false,
            TunnelMsg::AliveCheck { gen } if gen == st.gen && st.ssh.is_some() => {
                st.machine.proven_up(Instant::now())
            }
            TunnelMsg::Restart => {
                let a = st.machine.force_restart();
                apply(&me, st, a);
            }
            #[cfg(feature = "fault-injection")]
            TunnelMsg::Panic => panic!("fault injection: tunnel {} handler panicked", st.spec.name),
            _ => {} // stale generation
        }
        if st.machine.phase != before {
            audit_transition(st, before).await;
        }
        publish(st);
        Ok(())
    }

    async fn post_stop(
        &self,
        _me: ActorRef<TunnelMsg>,
        st: &mut TunnelState,
    ) -> Result<(), ActorProcessingErr> {
        let before = st.machine.phase;
        st.machine.stop();
        st.ssh = None; // kills the group
        audit_transition(st, before).await;
        publish(st);
        Ok(())
    }
}

fn start(me: &ActorRef<TunnelMsg>, st: &mut TunnelState) {
    if st.machine.phase == Phase::Stopped && st.gen > 0 || st.ssh.is_some() {
        return;
    }
    if let Some(t) = st.retry.take() {
        t.abort();
    }
    st.gen += 1;
    let gen = st.gen;
    let me2 = me.clone();
    let args = ssh::argv(&st.spec);
    match SshProcess::spawn(&ssh_program(), &args, move |exit| {
        let _ = me2.cast(TunnelMsg::Exited { gen, exit });
    }) {
        Ok(p) => {
            write_pidfile(&st.env.dir, &st.spec.name, p.pid);
            st.ssh = Some(p);
            st.machine.spawned(Instant::now());
            if st.spec.probe.is_some() {
                me.send_after(STARTING_PROBE, || TunnelMsg::ProbeTick);
            } else {
                let wait = st.spec.gate_time.max(Duration::from_millis(500));
                me.send_after(wait, move || TunnelMsg::AliveCheck { gen });
            }
        }
        Err(e) => {
            st.machine.spawned(Instant::now());
            let exit = Exit {
                status: format!("cannot run {}: {e}", ssh_program()),
                last_line: None,
            };
            on_exit(me, st, exit);
        }
    }
}

fn on_exit(me: &ActorRef<TunnelMsg>, st: &mut TunnelState, exit: Exit) {
    st.ssh = None;
    let why = match &exit.last_line {
        Some(l) => format!("{}: {l}", exit.status),
        None => exit.status.clone(),
    };
    let a = st.machine.exited(why, Instant::now(), rand::random());
    apply(me, st, a);
}

fn probe_tick(me: &ActorRef<TunnelMsg>, st: &mut TunnelState) {
    let (Some(kind), Some(_)) = (st.spec.probe, &st.ssh) else {
        return;
    };
    if st.probing {
        return;
    }
    st.probing = true;
    let (gen, port, timeout, me) = (
        st.gen,
        st.spec.local_port,
        st.spec.probe_timeout,
        me.clone(),
    );
    let tls = st.spec.probe_tls.clone();
    tokio::spawn(async move {
        let result = probe::probe(kind, port, tls, timeout).await;
        let _ = me.cast(TunnelMsg::ProbeResult { gen, result });
    });
}

fn apply(me: &ActorRef<TunnelMsg>, st: &mut TunnelState, a: Action) {
    match a {
        Action::None => {}
        Action::Spawn => start(me, st),
        Action::Kill(why) => {
            tracing::warn!(tunnel = %st.spec.name, %why, "killing ssh");
            let mut ev = AuditEvent::tunnel_kill(&st.spec.name, &why);
            if let Some(p) = &st.ssh {
                ev = ev.with("pid", p.pid);
            }
            st.env.audit.record_detached(ev);
            if let Some(p) = st.ssh.as_mut() {
                p.kill();
            }
        }
        Action::RetryIn(d) => {
            if let Some(t) = st.retry.take() {
                t.abort();
            }
            st.retry = Some(me.send_after(d, || TunnelMsg::Start));
        }
    }
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Starting => "starting",
        Phase::Up => "up",
        Phase::Backoff => "backoff",
        Phase::Failed => "failed",
        Phase::Stopped => "stopped",
    }
}

async fn audit_transition(st: &TunnelState, from: Phase) {
    let m = &st.machine;
    let mut ev = AuditEvent::tunnel_state(
        &st.spec.name,
        phase_name(from),
        phase_name(m.phase),
        m.restarts,
    );
    if let Some(p) = &st.ssh {
        ev = ev.with("pid", p.pid);
    }
    if matches!(m.phase, Phase::Backoff | Phase::Failed) {
        ev = ev.with("reason", m.last_exit.clone().unwrap_or_default());
    }
    st.env.audit.record(ev).await;
}

/// The status row for this tunnel.
fn status_row(st: &TunnelState) -> Value {
    let m = &st.machine;
    let s = &st.spec;
    let now = Instant::now();
    let forward = match s.direction {
        Direction::Local => format!(
            "127.0.0.1:{} -> {}:{} via {}",
            s.local_port, s.remote_host, s.remote_port, s.target
        ),
        Direction::Remote => format!(
            "{}:{} on {} -> 127.0.0.1:{}",
            s.remote_host, s.remote_port, s.target, s.local_port
        ),
    };
    json!({
        "name": s.name,
        "direction": if s.direction == Direction::Local { "local" } else { "remote" },
        "forward": forward,
        "state": phase_name(m.phase),
        "pid": st.ssh.as_ref().map(|p| p.pid),
        "uptimeMs": m.up_since.map(|t| now.duration_since(t).as_millis() as u64),
        "restarts": m.restarts,
        "lastRecoveryMs": m.last_recovery.map(|d| d.as_millis() as u64),
        "lastExit": m.last_exit,
        "configProblem": m.config_problem,
        "stderr": st.ssh.as_ref().map(|p| p.stderr_tail()).unwrap_or_default(),
        "nextRetryInMs": m.next_retry.map(|t| t.saturating_duration_since(now).as_millis() as u64),
        "healthCheck": s.probe.map(|k| format!("{k:?}").to_lowercase()),
        "fromSshConfig": s.forward_from_config,
        "overrides": s.overrides,
    })
}

fn publish(st: &TunnelState) {
    let row = status_row(st);
    st.env.table.set(&st.spec.name, row);
}

fn pidfile(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    dir.join(format!("{name}.pid"))
}

fn write_pidfile(dir: &std::path::Path, name: &str, pid: u32) {
    let path = pidfile(dir, name);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = crate::state::write_private_atomic(&path, format!("{pid}\n").as_bytes()) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the tunnel pid file");
        }
    });
}

/// After a SIGKILL of the gateway, ssh groups survive; kill the one recorded for this
/// tunnel if it is still an ssh process leading its own group.
fn reap_stale(dir: &std::path::Path, name: &str) {
    let path = pidfile(dir, name);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let pgrp = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().nth(2))
        .and_then(|p| p.parse::<u32>().ok());
    let is_ssh = cmdline
        .split(|b| *b == 0)
        .next()
        .is_some_and(|a| a.ends_with(b"ssh"));
    if is_ssh && pgrp == Some(pid) {
        tracing::warn!(tunnel = %name, pid, "killing a stale ssh left by a previous run");
        ssh::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
    }
    let _ = std::fs::remove_file(&path);
}

#[cfg(test)]
mod reload_tests {
    use super::*;
    use crate::config::tunnels::{validate, TunnelConfig};

    fn specs(v: serde_json::Value) -> Vec<crate::config::tunnels::TunnelSpec> {
        let cfg: Vec<TunnelConfig> = serde_json::from_value(v).unwrap();
        validate(&cfg, std::path::Path::new("c.json")).unwrap()
    }

    #[test]
    fn only_changed_tunnels_restart() {
        let old = specs(serde_json::json!([
            {"name": "a", "sshTarget": "u@h1", "localPort": 20001, "remotePort": 18789},
            {"name": "b", "sshTarget": "u@h2", "localPort": 20002, "remotePort": 18789},
            {"name": "c", "sshTarget": "u@h3", "localPort": 20003, "remotePort": 18789},
        ]));
        let running = old.iter().map(|t| (t.name.clone(), t.clone())).collect();
        let new = specs(serde_json::json!([
            {"name": "a", "sshTarget": "u@h1", "localPort": 20001, "remotePort": 18789},
            {"name": "b", "sshTarget": "u@h2", "localPort": 20012, "remotePort": 18789},
            {"name": "d", "sshTarget": "u@h4", "localPort": 20004, "remotePort": 18789},
        ]));
        let p = reload_plan(&running, &new);
        assert_eq!(
            p,
            ReloadPlan {
                added: vec!["d".into()],
                removed: vec!["c".into()],
                changed: vec!["b".into()],
            }
        );
        assert_eq!(reload_plan(&running, &old), ReloadPlan::default());
    }
}
