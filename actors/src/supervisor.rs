//! The supervision helper every supervising actor uses: Erlang/OTP semantics on top of
//! ractor. Restart types (permanent / transient / temporary), restart intensity within a
//! period (more than `max_restarts` in `period` escalates), jittered exponential backoff
//! between restarts, and ordered shutdown (reverse start order, each child with its own
//! timeout, then kill). The decision logic is pure and takes `now`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use ractor::{ActorCell, ActorId, SupervisionEvent};

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

/// Jittered exponential backoff between restarts.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Delay before the first restart in a window.
    pub initial: Duration,
    /// Cap.
    pub max: Duration,
    /// Jitter fraction in `[0, 1]`: the delay is scaled by a factor in `[1 - j, 1]`.
    pub jitter: f64,
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

/// A static child: its name, restart type and shutdown timeout.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Registered name (singletons only).
    pub name: String,
    /// Restart type.
    pub restart: Restart,
    /// How long a graceful stop may take before the child is killed.
    pub shutdown: Duration,
}

/// Sliding window of restart times.
#[derive(Debug, Clone)]
pub struct RestartWindow {
    intensity: Intensity,
    times: VecDeque<Instant>,
}

/// Supervision state held by a supervising actor.
#[derive(Debug)]
pub struct Supervisor {
    label: &'static str,
    specs: Vec<ChildSpec>,
    running: HashMap<ActorId, (String, ActorCell)>,
    window: RestartWindow,
    backoff: Backoff,
}

// === impl Backoff ===

impl Backoff {
    /// Delay for the `attempt`-th restart in a window (1-based), jitter drawn from `unit`
    /// (a number in `[0, 1)`).
    pub fn delay(&self, attempt: usize, unit: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30) as u32;
        let base = self
            .initial
            .saturating_mul(1u32 << exp.min(20))
            .min(self.max);
        let factor = 1.0 - self.jitter.clamp(0.0, 1.0) * unit.clamp(0.0, 1.0);
        base.mul_f64(factor)
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
            delay: backoff.delay(attempt, unit),
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

    /// Notes that `name` is running as `cell`.
    pub fn started(&mut self, name: &str, cell: ActorCell) {
        self.running.insert(cell.get_id(), (name.to_string(), cell));
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
        jitter: 0.5,
    };

    #[test]
    fn backoff_grows_caps_and_jitters_down() {
        let b = BACKOFF;
        let no_jitter: Vec<u128> = (1..=7).map(|a| b.delay(a, 0.0).as_millis()).collect();
        assert_eq!(no_jitter, vec![100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(b.delay(1, 0.999).as_millis(), 50);
        assert!(b.delay(3, 0.5) < b.delay(3, 0.0));
        assert_eq!(b.delay(1000, 0.0), Duration::from_secs(2));
    }

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
                    delay: BACKOFF.delay(i + 1, 0.0),
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
