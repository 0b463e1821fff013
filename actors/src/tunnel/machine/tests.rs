//! The state machine and backoff, driven with a fake clock.

use super::*;

const B: Backoff = Backoff {
    initial: Duration::from_millis(250),
    max: Duration::from_secs(60),
    multiplier: 2.0,
    jitter: 0.2,
};
/// Up this long resets the backoff.
const RESET: Duration = Duration::from_secs(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn backoff_schedule_grows_caps_and_jitters() {
    let no_jitter: Vec<u128> = (1..=10).map(|a| B.delay(a, 0.0).as_millis()).collect();
    assert_eq!(
        no_jitter,
        vec![250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
    );
    assert_eq!(
        B.delay(1, 0.999).as_millis(),
        200,
        "jitter takes at most 20 % off"
    );
    assert_eq!(B.delay(1000, 0.0), B.max);
    // never a hot loop: even with jitter the floor is initial*(1-jitter)
    assert!(B.delay(1, 0.999) >= ms(200));
}

#[test]
fn healthy_tunnel_killed_restarts_at_once() {
    let t0 = Instant::now();
    let mut m = Machine::new(B, RESET, Duration::from_secs(2), 2);
    m.spawned(t0);
    m.proven_up(t0 + ms(300));
    assert_eq!(m.phase, Phase::Up);
    // killed after 10 s up (stable): backoff reset, restart at once
    let a = m.exited("signal 9".into(), t0 + Duration::from_secs(10), 0.9);
    assert_eq!(a, Action::RetryIn(Duration::ZERO));
    assert_eq!((m.phase, m.restarts, m.attempt), (Phase::Backoff, 1, 1));
    // dying again soon after is not stable: the backoff applies (never a hot loop)
    m.spawned(t0 + Duration::from_secs(10));
    m.proven_up(t0 + Duration::from_secs(10) + ms(200));
    let a = m.exited("signal 9".into(), t0 + Duration::from_secs(11), 0.0);
    assert_eq!(a, Action::RetryIn(ms(500)));
}

#[test]
fn repeated_failures_back_off_then_reset_after_a_stable_period() {
    let mut now = Instant::now();
    let mut m = Machine::new(B, RESET, Duration::from_secs(2), 2);
    m.spawned(now);
    m.proven_up(now);
    now += Duration::from_secs(60);
    let mut delays = Vec::new();
    for _ in 0..4 {
        let a = m.exited("exit 255".into(), now, 0.0);
        let Action::RetryIn(d) = a else {
            panic!("{a:?}")
        };
        delays.push(d.as_millis());
        now += d;
        m.spawned(now);
        now += Duration::from_secs(3); // runs 3 s past the gate, never proven up
    }
    assert_eq!(
        delays,
        vec![0, 500, 1000, 2000],
        "the first follows a stable minute"
    );
    // up for 6 s (> reset_after): the next failure starts over, at once
    m.proven_up(now);
    now += Duration::from_secs(6);
    assert_eq!(
        m.exited("exit 255".into(), now, 0.0),
        Action::RetryIn(Duration::ZERO)
    );
    m.spawned(now);
    now += Duration::from_secs(3);
    assert_eq!(
        m.exited("exit 255".into(), now, 0.0),
        Action::RetryIn(ms(500))
    );
}

#[test]
fn first_start_failing_inside_the_gate_is_a_config_problem_retried_at_the_cap() {
    let t0 = Instant::now();
    let mut m = Machine::new(B, RESET, Duration::from_secs(2), 2);
    m.spawned(t0);
    let a = m.exited("Permission denied (publickey).".into(), t0 + ms(80), 0.5);
    assert_eq!(a, Action::RetryIn(B.max));
    assert_eq!(m.phase, Phase::Failed);
    assert_eq!(
        m.config_problem.as_deref(),
        Some("Permission denied (publickey).")
    );
    // once it has been up, quick failures are ordinary again
    m.spawned(t0 + Duration::from_secs(60));
    m.proven_up(t0 + Duration::from_secs(61));
    assert_eq!(m.config_problem, None);
    let a = m.exited("x".into(), t0 + Duration::from_secs(61) + ms(100), 0.0);
    assert_eq!(m.phase, Phase::Backoff);
    assert!(matches!(a, Action::RetryIn(d) if d < B.max));
}

#[test]
fn probe_failures_kill_after_the_threshold() {
    let t0 = Instant::now();
    let mut m = Machine::new(B, RESET, Duration::from_secs(2), 2);
    m.spawned(t0);
    m.proven_up(t0);
    assert_eq!(m.probe_failed("timeout"), Action::None);
    m.proven_up(t0 + ms(10)); // a success in between resets the count
    assert_eq!(m.probe_failed("timeout"), Action::None);
    assert!(matches!(m.probe_failed("timeout"), Action::Kill(r) if r.contains("2 times")));
}

#[test]
fn probe_failures_while_starting_do_not_count_but_a_stuck_start_is_killed() {
    let t0 = Instant::now();
    let mut m = Machine::new(B, RESET, Duration::from_secs(2), 2);
    m.spawned(t0);
    for _ in 0..5 {
        assert_eq!(m.probe_failed("connect refused"), Action::None);
    }
    assert_eq!(
        m.starting_too_long(t0 + Duration::from_secs(5), Duration::from_secs(30)),
        Action::None
    );
    assert!(matches!(
        m.starting_too_long(t0 + Duration::from_secs(31), Duration::from_secs(30)),
        Action::Kill(_)
    ));
    m.proven_up(t0 + Duration::from_secs(1));
    assert_eq!(
        m.starting_too_long(t0 + Duration::from_secs(99), Duration::from_secs(30)),
        Action::None
    );
}

#[test]
fn stop_and_force_restart() {
    let t0 = Instant::now();
    let mut m = Machine::new(B, RESET, Duration::from_secs(2), 2);
    m.spawned(t0);
    m.proven_up(t0);
    assert!(matches!(m.force_restart(), Action::Kill(_)));
    assert_eq!(
        m.exited("killed".into(), t0 + ms(50), 0.9),
        Action::RetryIn(Duration::ZERO),
        "operator restart skips the backoff"
    );
    m.spawned(t0 + ms(60));
    assert!(matches!(m.stop(), Action::Kill(_)));
    assert_eq!(
        m.exited("killed".into(), t0 + ms(70), 0.0),
        Action::None,
        "no restart once stopped"
    );
    assert_eq!(m.phase, Phase::Stopped);
    // a pending backoff is cut short
    let mut m = Machine::new(B, RESET, Duration::from_secs(2), 2);
    m.spawned(t0);
    m.exited("x".into(), t0 + Duration::from_secs(5), 0.0);
    assert_eq!(m.force_restart(), Action::Spawn);
}

#[test]
fn last_recovery_measures_down_to_proven_up_again() {
    let t0 = Instant::now();
    let mut m = Machine::new(B, RESET, Duration::from_secs(2), 2);
    m.spawned(t0);
    m.proven_up(t0 + ms(300));
    assert_eq!(m.last_recovery, None, "the first start is not a recovery");
    // Up 10 s, then ssh dies; a failed retry in between does not reset the clock.
    m.exited("exit 255".into(), t0 + ms(10_000), 0.0);
    m.spawned(t0 + ms(10_000));
    m.exited("exit 255".into(), t0 + ms(10_100), 0.0);
    m.spawned(t0 + ms(10_400));
    m.proven_up(t0 + ms(10_600));
    assert_eq!(m.last_recovery, Some(ms(600)));
    assert_eq!(m.down_since, None);
}
