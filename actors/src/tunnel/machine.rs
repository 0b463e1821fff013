//! The life of one ssh process, as a pure state machine with `now` passed in (autossh's
//! rules, improved): restart on exit after a jittered exponential backoff with a cap; a
//! tunnel that had been up for `reset_after` restarts at once and starts over; a failure inside the gate
//! time before the tunnel was ever up is reported as a configuration problem but retried at
//! the capped rate instead of giving up; never a hot loop (every retry waits at least
//! `initial`, and a config problem waits `max`); health-check failures kill ssh.

use std::time::{Duration, Instant};

pub use crate::supervisor::Backoff;

/// Observable state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// ssh running, not yet proven up.
    Starting,
    /// Forward proven (probe ok, or alive past the gate for unprobed tunnels).
    Up,
    /// Waiting to restart after an exit.
    Backoff,
    /// Failing at start-up: a configuration problem; still retried at the capped rate.
    Failed,
    /// Stopped on request.
    Stopped,
}

/// What the actor must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing.
    None,
    /// Start ssh now.
    Spawn,
    /// Kill the ssh process group (its exit then comes back as an event).
    Kill(String),
    /// Start ssh after this delay.
    RetryIn(Duration),
}

/// The machine.
#[derive(Debug, Clone)]
pub struct Machine {
    backoff: Backoff,
    /// Up this long resets the attempt count.
    reset_after: Duration,
    gate: Duration,
    failures_allowed: u32,
    /// Current phase.
    pub phase: Phase,
    /// Consecutive failed runs (drives the backoff).
    pub attempt: u32,
    /// Restarts since the supervisor started this tunnel.
    pub restarts: u64,
    /// When the current ssh started.
    pub started_at: Option<Instant>,
    /// When the tunnel last became up.
    pub up_since: Option<Instant>,
    /// When an up tunnel last went down (cleared once it is up again).
    pub down_since: Option<Instant>,
    /// How long the last recovery took: from going down to being proven up again.
    pub last_recovery: Option<Duration>,
    /// When the next start is due.
    pub next_retry: Option<Instant>,
    /// Why ssh last exited.
    pub last_exit: Option<String>,
    /// Set while failing at start-up.
    pub config_problem: Option<String>,
    ever_up: bool,
    probe_failures: u32,
    restart_now: bool,
}

// === impl Machine ===

impl Machine {
    /// A machine in `Stopped`, ready for [`Machine::start`].
    pub fn new(
        backoff: Backoff,
        reset_after: Duration,
        gate: Duration,
        failures_allowed: u32,
    ) -> Self {
        Self {
            backoff,
            reset_after,
            gate,
            failures_allowed: failures_allowed.max(1),
            phase: Phase::Stopped,
            attempt: 0,
            restarts: 0,
            started_at: None,
            up_since: None,
            down_since: None,
            last_recovery: None,
            next_retry: None,
            last_exit: None,
            config_problem: None,
            ever_up: false,
            probe_failures: 0,
            restart_now: false,
        }
    }

    /// ssh was started at `now`.
    pub fn spawned(&mut self, now: Instant) {
        self.phase = Phase::Starting;
        self.started_at = Some(now);
        self.up_since = None;
        self.next_retry = None;
        self.probe_failures = 0;
    }

    /// The forward was proven up.
    pub fn proven_up(&mut self, now: Instant) {
        if self.phase == Phase::Starting {
            self.phase = Phase::Up;
            self.up_since = Some(now);
            if let Some(down) = self.down_since.take() {
                self.last_recovery = Some(now.duration_since(down));
            }
            self.ever_up = true;
            self.config_problem = None;
        }
        self.probe_failures = 0;
    }

    /// A health check failed; returns `Kill` after too many in a row. Only an `Up` tunnel
    /// counts failures: while `Starting`, ssh may still be connecting (bounded by
    /// [`Machine::starting_too_long`]).
    pub fn probe_failed(&mut self, why: &str) -> Action {
        if self.phase != Phase::Up {
            return Action::None;
        }
        self.probe_failures += 1;
        if self.probe_failures >= self.failures_allowed {
            self.probe_failures = 0;
            return Action::Kill(format!(
                "health check failed {} times: {why}",
                self.failures_allowed
            ));
        }
        Action::None
    }

    /// ssh exited at `now`; `unit` in [0, 1) draws the jitter.
    pub fn exited(&mut self, why: String, now: Instant, unit: f64) -> Action {
        self.last_exit = Some(why.clone());
        if self.phase == Phase::Stopped {
            return Action::None;
        }
        // Up for a stable period: start over, and restart at once (like autossh's first
        // tries). A tunnel that flaps cannot loop faster than once per `reset_after`.
        let stable = self
            .up_since
            .is_some_and(|t| now.duration_since(t) >= self.reset_after);
        if stable {
            self.attempt = 0;
        }
        let ran = self
            .started_at
            .map(|t| now.duration_since(t))
            .unwrap_or_default();
        self.attempt = self.attempt.saturating_add(1);
        self.restarts += 1;
        if self.up_since.is_some() && self.down_since.is_none() {
            self.down_since = Some(now);
        }
        self.up_since = None;
        let delay = if std::mem::take(&mut self.restart_now) {
            self.phase = Phase::Backoff;
            Duration::ZERO
        } else if !self.ever_up && ran < self.gate {
            self.phase = Phase::Failed;
            self.config_problem = Some(why);
            self.backoff.max
        } else if stable {
            self.phase = Phase::Backoff;
            Duration::ZERO
        } else {
            self.phase = Phase::Backoff;
            self.backoff.delay(self.attempt, unit)
        };
        self.next_retry = Some(now + delay);
        Action::RetryIn(delay)
    }

    /// A start that never proves up within `limit` is killed (and retried).
    pub fn starting_too_long(&mut self, now: Instant, limit: Duration) -> Action {
        match (self.phase, self.started_at) {
            (Phase::Starting, Some(t)) if now.duration_since(t) > limit => {
                Action::Kill(format!("not up within {} s", limit.as_secs()))
            }
            _ => Action::None,
        }
    }

    /// Stop on request.
    pub fn stop(&mut self) -> Action {
        let was_running = matches!(self.phase, Phase::Starting | Phase::Up);
        self.phase = Phase::Stopped;
        self.next_retry = None;
        if was_running {
            Action::Kill("stopped".into())
        } else {
            Action::None
        }
    }

    /// Restart now (operator request): kill a running ssh, or cut a pending backoff.
    pub fn force_restart(&mut self) -> Action {
        match self.phase {
            Phase::Starting | Phase::Up => {
                self.restart_now = true;
                Action::Kill("restart requested".into())
            }
            Phase::Backoff | Phase::Failed => {
                self.next_retry = None;
                Action::Spawn
            }
            Phase::Stopped => Action::None,
        }
    }
}

#[cfg(test)]
mod tests;
