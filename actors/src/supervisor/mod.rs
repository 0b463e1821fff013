//! The supervision helper every supervising actor uses: Erlang/OTP semantics on top of
//! ractor. Children are started from data (a [`ChildSpec`] carries its own start function),
//! restart types (permanent / transient / temporary), restart intensity within a period
//! (more than `max_restarts` in `period` escalates), jittered exponential [`Backoff`] between
//! restarts, and ordered shutdown (reverse start order, each child with its own timeout,
//! then kill). The decision logic is pure and takes `now`.

pub mod backoff;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{
    ActorCell, ActorId, ActorProcessingErr, ActorRef, Message, SpawnErr, SupervisionEvent,
};

pub use backoff::Backoff;

use crate::wiring::Slot;

/// When a child is restarted (OTP restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Always restarted.
    Permanent,
    /// Restarted only after a failure (panic or `Err`), not after a clean stop.
    Transient,
    /// Never restarted (per-connection sessions).
    Temporary,
}

/// Restart intensity: more than `max_restarts` within `period` escalates to the parent.
#[derive(Debug, Clone, Copy)]
pub struct Intensity {
    /// MaxR.
    pub max_restarts: usize,
    /// MaxT.
    pub period: Duration,
}

/// What a supervisor does about a child event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Not a child event we track.
    Ignore,
    /// The child is gone and stays gone.
    Removed {
        /// Child name.
        name: String,
        /// Whether it failed (vs. stopped cleanly).
        failed: bool,
    },
    /// Restart `name` after `delay`.
    Restart {
        /// Child name.
        name: String,
        /// Backoff delay.
        delay: Duration,
        /// Restarts in the current window, this one included.
        attempt: usize,
    },
    /// Intensity exceeded: stop and fail upwards.
    Escalate(String),
}

/// Starts a child linked to the supervisor cell it is given, and returns its cell.
pub type StartFn = Arc<
    dyn Fn(ActorCell) -> Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>>
        + Send
        + Sync,
>;

/// A child: its name (for logs and restarts), restart type, shutdown timeout, and how to
/// start it. Adding a child to a supervisor is adding one spec.
#[derive(Clone)]
pub struct ChildSpec {
    /// Name, unique among the supervisor's children (logs, audit, restarts).
    pub name: String,
    /// Restart type.
    pub restart: Restart,
    /// How long a graceful stop may take before the child is killed.
    pub shutdown: Duration,
    /// Starts the child (and points its slot at it).
    pub start: StartFn,
}

/// Sliding window of restart times.
#[derive(Debug, Clone)]
pub struct RestartWindow {
    intensity: Intensity,
    times: VecDeque<Instant>,
}

/// Supervision state held by a supervising actor.
pub struct Supervisor {
    label: &'static str,
    specs: Vec<ChildSpec>,
    running: HashMap<ActorId, (String, ActorCell)>,
    window: RestartWindow,
    backoff: Backoff,
}

// === impl ChildSpec ===

impl ChildSpec {
    /// A child started by `spawn(args.clone(), supervisor)`; each start (the first and every
    /// restart) points `slot` at the new incarnation.
    pub fn new<M, A, F, Fut>(
        name: impl Into<String>,
        restart: Restart,
        shutdown: Duration,
        args: A,
        slot: Option<Slot<M>>,
        spawn: F,
    ) -> Self
    where
        M: Message,
        A: Clone + Send + Sync + 'static,
        F: Fn(A, ActorCell) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActorRef<M>, SpawnErr>> + Send + 'static,
    {
        let spawn = Arc::new(spawn);
        let start: StartFn = Arc::new(move |sup: ActorCell| {
            let fut = spawn(args.clone(), sup);
            let slot = slot.clone();
            Box::pin(async move {
                let r = fut.await?;
                if let Some(s) = slot {
                    s.set(r.clone());
                }
                Ok(r.get_cell())
            })
        });
        Self {
            name: name.into(),
            restart,
            shutdown,
            start,
        }
    }
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .finish()
    }
}

// === impl RestartWindow ===

impl RestartWindow {
    /// An empty window.
    pub fn new(intensity: Intensity) -> Self {
        Self {
            intensity,
            times: VecDeque::new(),
        }
    }

    /// Records a restart at `now`; `Err` when this one exceeds the intensity.
    pub fn record(&mut self, now: Instant) -> Result<usize, usize> {
        while let Some(t) = self.times.front() {
            if now.duration_since(*t) > self.intensity.period {
                self.times.pop_front();
            } else {
                break;
            }
        }
        self.times.push_back(now);
        let n = self.times.len();
        if n > self.intensity.max_restarts {
            Err(n)
        } else {
            Ok(n)
        }
    }
}

/// The pure decision for one child exit.
pub fn decide(
    name: &str,
    restart: Restart,
    failed: bool,
    window: &mut RestartWindow,
    backoff: &Backoff,
    now: Instant,
    unit: f64,
) -> Decision {
    let restart_it = match restart {
        Restart::Permanent => true,
        Restart::Transient => failed,
        Restart::Temporary => false,
    };
    if !restart_it {
        return Decision::Removed {
            name: name.to_string(),
            failed,
        };
    }
    match window.record(now) {
        Ok(attempt) => Decision::Restart {
            name: name.to_string(),
            delay: backoff.delay(attempt as u32, unit),
            attempt,
        },
        Err(n) => Decision::Escalate(format!(
            "child {name} restarted {n} times within {:?}: giving up",
            window.intensity.period
        )),
    }
}

// === impl Supervisor ===

impl Supervisor {
    /// A supervisor for `specs` (start order = list order).
    pub fn new(
        label: &'static str,
        specs: Vec<ChildSpec>,
        intensity: Intensity,
        backoff: Backoff,
    ) -> Self {
        Self {
            label,
            specs,
            running: HashMap::new(),
            window: RestartWindow::new(intensity),
            backoff,
        }
    }

    /// The child specs in start order.
    pub fn specs(&self) -> &[ChildSpec] {
        &self.specs
    }

    /// Adds (or replaces) a child spec; start it with [`Supervisor::start`].
    pub fn add(&mut self, spec: ChildSpec) {
        self.specs.retain(|s| s.name != spec.name);
        self.specs.push(spec);
    }

    /// Stops child `name` (if running) and forgets its spec. `false` when it was unknown.
    pub async fn remove(&mut self, name: &str) -> bool {
        let known = self.specs.iter().any(|s| s.name == name);
        self.stop_child(name).await;
        self.specs.retain(|s| s.name != name);
        known
    }

    /// Notes that `name` is running as `cell`.
    pub fn started(&mut self, name: &str, cell: ActorCell) {
        self.running.insert(cell.get_id(), (name.to_string(), cell));
    }

    /// Starts child `name` linked to `supervisor`.
    pub async fn start(&mut self, name: &str, supervisor: &ActorCell) -> Result<(), SpawnErr> {
        let spec = self
            .specs
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| SpawnErr::StartupFailed(format!("no child named {name}").into()))?;
        let cell = (spec.start)(supervisor.clone()).await?;
        self.started(name, cell);
        Ok(())
    }

    /// Starts every child in spec order; on a failure stops those already started (in
    /// reverse order) and returns the error.
    pub async fn start_all(&mut self, supervisor: &ActorCell) -> Result<(), ActorProcessingErr> {
        let names: Vec<String> = self.specs.iter().map(|s| s.name.clone()).collect();
        for name in names {
            if let Err(e) = self.start(&name, supervisor).await {
                self.shutdown().await;
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Stops child `name` now (within its shutdown timeout) and forgets it, so its exit is
    /// not restarted. `false` when it was not running.
    pub async fn stop_child(&mut self, name: &str) -> bool {
        let Some(id) = self
            .running
            .iter()
            .find(|(_, (n, _))| n == name)
            .map(|(id, _)| *id)
        else {
            return false;
        };
        let Some((_, cell)) = self.running.remove(&id) else {
            return false;
        };
        let timeout = self
            .specs
            .iter()
            .find(|s| s.name == name)
            .map_or(Duration::from_secs(5), |s| s.shutdown);
        let _ = cell
            .stop_and_wait(Some("shutdown".into()), Some(timeout))
            .await;
        true
    }

    /// Decides what to do about a supervision event.
    pub fn on_event(&mut self, evt: &SupervisionEvent, now: Instant) -> Decision {
        let (cell, failed, why) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, true, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell,
                false,
                reason.clone().unwrap_or_else(|| "stopped".into()),
            ),
            _ => return Decision::Ignore,
        };
        let Some((name, _)) = self.running.remove(&cell.get_id()) else {
            return Decision::Ignore;
        };
        let restart = self
            .specs
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.restart)
            .unwrap_or(Restart::Temporary);
        let d = decide(
            &name,
            restart,
            failed,
            &mut self.window,
            &self.backoff,
            now,
            rand::random(),
        );
        if failed || matches!(d, Decision::Restart { .. } | Decision::Escalate(_)) {
            tracing::warn!(supervisor = self.label, child = %name, failed, reason = %why, decision = ?d, "child exited");
        } else {
            tracing::debug!(supervisor = self.label, child = %name, reason = %why, "child exited");
        }
        d
    }

    /// Stops children in reverse start order, each within its shutdown timeout, killing
    /// those that do not stop in time. Returns the names that had to be killed.
    pub async fn shutdown(&mut self) -> Vec<String> {
        let mut killed = Vec::new();
        for spec in self.specs.iter().rev() {
            let cell = self
                .running
                .values()
                .find(|(n, _)| *n == spec.name)
                .map(|(_, c)| c.clone());
            let Some(cell) = cell else { continue };
            self.running.remove(&cell.get_id());
            if matches!(
                cell.get_status(),
                ractor::ActorStatus::Stopped | ractor::ActorStatus::Stopping
            ) {
                continue;
            }
            let res = cell
                .stop_and_wait(Some("shutdown".into()), Some(spec.shutdown))
                .await;
            // Only a timeout means the child is stuck; other errors mean it is already gone.
            if matches!(res, Err(ractor::RactorErr::Timeout)) {
                tracing::warn!(supervisor = self.label, child = %spec.name, "child did not stop in time; killing it");
                let _ = cell.kill_and_wait(Some(Duration::from_secs(1))).await;
                killed.push(spec.name.clone());
            }
        }
        killed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(2),
        multiplier: 2.0,
        jitter: 0.5,
    };

    #[test]
    fn restart_types_table() {
        let t0 = Instant::now();
        let cases = [
            (Restart::Permanent, false, true),
            (Restart::Permanent, true, true),
            (Restart::Transient, false, false),
            (Restart::Transient, true, true),
            (Restart::Temporary, true, false),
            (Restart::Temporary, false, false),
        ];
        for (restart, failed, want_restart) in cases {
            let mut w = RestartWindow::new(Intensity {
                max_restarts: 3,
                period: Duration::from_secs(5),
            });
            let d = decide("c", restart, failed, &mut w, &BACKOFF, t0, 0.0);
            assert_eq!(
                matches!(d, Decision::Restart { .. }),
                want_restart,
                "{restart:?} failed={failed}"
            );
        }
    }

    #[test]
    fn intensity_escalates_only_within_period() {
        let t0 = Instant::now();
        let mut w = RestartWindow::new(Intensity {
            max_restarts: 3,
            period: Duration::from_secs(5),
        });
        let at = |s: u64| t0 + Duration::from_secs(s);
        for (i, s) in [0u64, 1, 2].iter().enumerate() {
            let d = decide("c", Restart::Permanent, true, &mut w, &BACKOFF, at(*s), 0.0);
            assert_eq!(
                d,
                Decision::Restart {
                    name: "c".into(),
                    delay: BACKOFF.delay(i as u32 + 1, 0.0),
                    attempt: i + 1
                }
            );
        }
        // a 4th failure 3 s later: 4 restarts within 5 s > 3
        assert!(matches!(
            decide("c", Restart::Permanent, true, &mut w, &BACKOFF, at(3), 0.0),
            Decision::Escalate(_)
        ));
        // far later the window is empty again and backoff resets
        let d = decide(
            "c",
            Restart::Permanent,
            true,
            &mut w,
            &BACKOFF,
            at(100),
            0.0,
        );
        assert_eq!(
            d,
            Decision::Restart {
                name: "c".into(),
                delay: BACKOFF.initial,
                attempt: 1
            }
        );
    }
}
