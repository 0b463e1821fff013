//! State read on hot paths without messages, split by owner and purpose. Each actor's `Args`
//! names only the parts it uses:
//!
//! - [`Facts`]: fixed for the life of the process (start-up settings, boot id, host name).
//! - [`Registry`]: the bound listeners and the live connections (written by listeners and
//!   sessions, read by `status`, presence and pairing).
//! - [`Counters`]: gateway-wide numbers and `stateVersion`.
//! - [`LiveConfig`]: what hot reload may change, swapped whole by the Reloader.
//! - [`TunnelTable`]: tunnel status rows published by the Tunnel actors.
//!
//! [`Hub`] bundles them for the places that legitimately read everything (HTTP admission and
//! the request methods, whose `status` reports on every part). Actors own lifecycle; these
//! only hold numbers and snapshots.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::audit::AuditHandle;
use crate::auth::lockout::LockoutConfig;
use crate::auth::rules::Secrets;
use crate::config::{AuthMode, Settings};
use crate::guard::limiter::Limiter;
use crate::guard::preauth::PreauthTable;
use crate::guard::Policy;

/// Version reported to clients.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A random (v4) UUID from the thread's CSPRNG (`rand`'s ChaCha-based `ThreadRng`, seeded
/// from the OS): for connection ids and challenge nonces, which each handshake makes one
/// of. `Uuid::new_v4` asks the kernel (`getrandom`) every time: two system calls per
/// handshake (issue 15).
pub fn random_uuid() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The UTC calendar date `(year, month, day)` of a day count since 1970-01-01 (Howard
/// Hinnant's civil_from_days; no date crate needed).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Who an authenticated connection is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `client.id`.
    pub client_id: String,
    /// `client.mode`.
    pub client_mode: String,
    /// `client.version`.
    pub client_version: String,
    /// `client.platform`.
    pub platform: String,
    /// `client.deviceFamily`.
    pub device_family: Option<String>,
    /// `client.displayName`.
    pub display_name: Option<String>,
    /// `client.instanceId`.
    pub instance_id: Option<String>,
    /// `operator` or `node`.
    pub role: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// `none` | `token` | `password`.
    pub auth_method: &'static str,
    /// Verified device id, if any.
    pub device_id: Option<String>,
    /// Negotiated protocol.
    pub protocol: u32,
    /// When `hello-ok` was sent.
    pub authenticated_at_ms: i64,
}

/// What the HTTP upgrade learned about a connection. Built once by the upgrade and shared as
/// one `Arc` by the session, its registry entry and the Auth actor.
#[derive(Debug, Clone)]
pub struct ConnFacts {
    /// Connection id (uuid).
    pub conn_id: String,
    /// TCP peer.
    pub peer: SocketAddr,
    /// The client: the TCP peer, or who a trusted proxy says it forwards.
    pub client: IpAddr,
    /// Came through a trusted proxy (forwarding headers from anyone else are refused before
    /// the upgrade).
    pub forwarded: bool,
    /// `Origin` header (a browser).
    pub origin: Option<String>,
    /// The user a trusted proxy names (auth mode `trusted-proxy`), or why it names none.
    pub proxy_user: Option<Result<String, &'static str>>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// Accept time, ms since the epoch.
    pub connected_at_ms: i64,
    /// Came in on the Tailscale-managed listener: what Tailscale's proxy said.
    pub tailscale: Option<crate::tailscale::parse::Ingress>,
    /// `peer` as text, formatted on first use ([`ConnFacts::peer_str`]): the connection's
    /// span and each of its audit lines name it.
    pub(crate) peer_text: std::sync::OnceLock<String>,
}

/// Live numbers for one connection, bumped by its I/O task without locks.
#[derive(Debug)]
pub struct ConnStats {
    /// What the upgrade learned.
    pub facts: Arc<ConnFacts>,
    /// Set once authenticated.
    pub identity: RwLock<Option<Identity>>,
    /// Listed in presence ([`Registry::list`]).
    listed: AtomicBool,
    /// Text frames received.
    pub frames_in: AtomicU64,
    /// Frames sent.
    pub frames_out: AtomicU64,
    /// Payload bytes received.
    pub bytes_in: AtomicU64,
    /// Payload bytes sent.
    pub bytes_out: AtomicU64,
}

/// Fixed for the life of the process.
#[derive(Debug)]
pub struct Facts {
    /// Settings as started. Restart-only keys are read here; hot-reloadable ones live in
    /// [`LiveConfig`].
    pub settings: Settings,
    /// Start instant (uptime).
    pub started: Instant,
    /// Start time, ms since epoch.
    pub started_ms: i64,
    /// Random id of this process run.
    pub boot_id: String,
    /// This machine's host name, for presence.
    pub hostname: String,
    /// Where the generated runtime token lives, if one was generated or reused.
    pub runtime_token_path: Option<PathBuf>,
}

/// The bound listeners and the live connections.
#[derive(Debug, Default)]
pub struct Registry {
    /// The bound port (known after the first listener binds).
    pub port: AtomicU16,
    /// Bound listener addresses.
    listeners: Mutex<Vec<SocketAddr>>,
    /// Live connections by connId.
    conns: Mutex<HashMap<String, Arc<ConnStats>>>,
    /// The presence entries of the listed authenticated clients, oldest first, each
    /// serialized once ([`Registry::list`]): a `hello-ok` copies these instead of walking,
    /// sorting and serializing every connection.
    listed: Mutex<BTreeMap<(i64, String), Arc<RawValue>>>,
    /// `conns.len()`, readable without the lock (`health` on every request).
    conn_count: std::sync::atomic::AtomicUsize,
    /// The listener URLs, rebuilt when a listener binds or goes (read by every `health`).
    urls: RwLock<Arc<Vec<String>>>,
    /// Set when shutdown begins: new connections are refused.
    pub shutting_down: AtomicBool,
    /// Set once every actor has started (`/readyz` and `/startupz` say `starting` before).
    pub started: AtomicBool,
    /// `wss` when the listeners speak TLS, else `ws`.
    scheme: &'static str,
}

/// Gateway-wide counters.
#[derive(Debug)]
pub struct Counters {
    /// WebSocket connections accepted since start.
    pub connections_total: AtomicU64,
    /// Successful handshakes.
    pub auth_ok: AtomicU64,
    /// Rejected handshakes.
    pub auth_failed: AtomicU64,
    /// Handshakes that timed out.
    pub handshake_timeouts: AtomicU64,
    /// Session actors that crashed.
    pub sessions_crashed: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Requests refused because the session had too many in flight.
    pub requests_over_in_flight: AtomicU64,
    /// Connections closed 1008 "slow consumer".
    pub slow_consumers: AtomicU64,
    /// HTTP requests (not upgrades).
    pub http_requests: AtomicU64,
    /// Requests refused by the IP allowlist (HTTP 403).
    pub allowlist_denied: AtomicU64,
    /// Requests refused for untrusted or malformed forwarding headers.
    pub forwarding_refused: AtomicU64,
    /// Upgrades refused by the pre-auth cap (HTTP 429).
    pub preauth_refused: AtomicU64,
    /// Config reloads applied.
    pub reloads: AtomicU64,
    /// Config reloads refused (invalid file; the old settings stay).
    pub reloads_failed: AtomicU64,
    /// `stateVersion.presence`.
    pub presence_version: AtomicU64,
    /// `stateVersion.health`.
    pub health_version: AtomicU64,
}

/// What hot reload may change, swapped whole (readers take a snapshot: one lock, one `Arc`
/// clone, then no lock while they use it).
#[derive(Debug, Clone)]
pub struct Live {
    /// The settings as last loaded from the file (what `config.get` shows). Keys that need
    /// a restart may differ from [`Facts::settings`]; they are listed in `restart_pending`.
    pub settings: Arc<Settings>,
    /// SHA-256 (hex) of the config file's bytes as last loaded.
    pub file_hash: String,
    /// The secrets in force (including a generated runtime token).
    pub secrets: Secrets,
    /// Admission rules.
    pub policy: Policy,
    /// Auth-failure lockout.
    pub lockout: Option<LockoutConfig>,
    /// Bumped by each reload that applied a change.
    pub generation: u64,
    /// Keys changed in the file since start that only a restart applies.
    pub restart_pending: Vec<&'static str>,
}

/// The cell holding [`Live`].
#[derive(Debug)]
pub struct LiveConfig(RwLock<Arc<Live>>);

/// Tunnel status rows by name.
#[derive(Debug, Default)]
pub struct TunnelTable(Mutex<BTreeMap<String, Value>>);

/// A function that swaps the process's log filter and returns the one it replaced.
pub type SetFilter = Box<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

/// Changes the log filter of the running process (installed by the binary, which owns the
/// subscriber; absent in tests that install none).
#[derive(Default)]
pub struct LogControl {
    set: std::sync::OnceLock<SetFilter>,
    current: Mutex<String>,
    /// `RUST_LOG` was set at start: `logging.level` reloads leave the filter alone.
    pub env_override: AtomicBool,
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogControl")
            .field("installed", &self.set.get().is_some())
            .finish()
    }
}

impl LogControl {
    /// Installs the setter (once).
    pub fn install(&self, set: SetFilter, initial: &str, env_override: bool) {
        self.env_override.store(env_override, Ordering::Relaxed);
        *lock(&self.current) = initial.to_string();
        let _ = self.set.set(set);
    }

    /// Applies `filter` (tracing-subscriber `EnvFilter` syntax); returns the previous one.
    pub fn set(&self, filter: &str) -> Result<String, String> {
        match self.set.get() {
            Some(f) => {
                f(filter)?;
                Ok(std::mem::replace(
                    &mut *lock(&self.current),
                    filter.to_string(),
                ))
            }
            None => Err("this process has no reloadable log filter".into()),
        }
    }

    /// The filter in force (empty when none is installed).
    pub fn current(&self) -> String {
        lock(&self.current).clone()
    }

    /// The filter for a `logging.level` (noisy dependencies stay at warn).
    pub fn level_filter(level: &str) -> String {
        format!("{level},hyper=warn,ractor=warn")
    }
}

/// Every part, for HTTP admission and the request methods.
#[derive(Debug, Clone)]
pub struct Hub {
    /// Fixed facts.
    pub facts: Arc<Facts>,
    /// Listeners and connections.
    pub registry: Arc<Registry>,
    /// Counters.
    pub counters: Arc<Counters>,
    /// Hot-reloadable settings.
    pub live: Arc<LiveConfig>,
    /// Tunnel status rows.
    pub tunnels: Arc<TunnelTable>,
    /// The request rate limit's table (upkeep by the RateLimiter actor; checked in place).
    pub limiter: Arc<Limiter>,
    /// Pre-auth connections per client address.
    pub preauth: Arc<PreauthTable>,
    /// Open connections, capped at accept (`gateway.connections`).
    pub conns: Arc<crate::guard::conncap::ConnTable>,
    /// The last `health` answer, served while current.
    pub health_cache: Arc<RwLock<Option<crate::session::methods::HealthCached>>>,
    /// Audit producer handle.
    pub audit: AuditHandle,
    /// The served TLS pair, when the listeners speak TLS.
    pub tls: Option<Arc<crate::tls::TlsState>>,
    /// The log filter of the running process.
    pub log: Arc<LogControl>,
    /// Active per-connection traces (`openclaw trace`).
    pub trace: Arc<crate::trace::TraceControl>,
    /// Per-method request numbers and other series kept only for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Tailscale serve/funnel status (written by the Tailscale actor).
    pub tailscale: Arc<crate::tailscale::TailscaleTable>,
    /// Node summary and relay counters (written by the NodeRegistry).
    pub nodes: Arc<crate::nodes::NodeTable>,
}

// === impl Facts ===

impl Facts {
    /// Facts for a process started now with `settings`.
    pub fn new(settings: Settings, runtime_token_path: Option<PathBuf>) -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        Self {
            settings,
            started: Instant::now(),
            started_ms: now_ms(),
            boot_id: uuid::Uuid::new_v4().to_string(),
            hostname,
            runtime_token_path,
        }
    }

    /// Uptime in ms.
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The auth mode name for `hello-ok.snapshot.authMode` and `status`.
    pub fn auth_mode_name(&self) -> &'static str {
        match self.settings.auth.mode {
            AuthMode::None => "none",
            AuthMode::Token => "token",
            AuthMode::Password => "password",
            AuthMode::TrustedProxy => "trusted-proxy",
        }
    }
}

// === impl Registry ===

impl Registry {
    /// An empty registry expecting `port` (0: any); `tls` when the listeners speak TLS.
    pub fn new(port: u16, tls: bool) -> Self {
        Self {
            port: AtomicU16::new(port),
            scheme: if tls { "wss" } else { "ws" },
            ..Default::default()
        }
    }

    /// Registers a new connection and returns its stats.
    pub fn register(&self, facts: Arc<ConnFacts>) -> Arc<ConnStats> {
        let stats = Arc::new(ConnStats {
            facts,
            identity: RwLock::new(None),
            listed: AtomicBool::new(false),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        });
        let mut conns = lock(&self.conns);
        conns.insert(stats.facts.conn_id.clone(), stats.clone());
        self.conn_count.store(conns.len(), Ordering::Relaxed);
        stats
    }

    /// Removes a connection (and its presence entry).
    pub fn unregister(&self, conn_id: &str) {
        let gone = {
            let mut conns = lock(&self.conns);
            let gone = conns.remove(conn_id);
            self.conn_count.store(conns.len(), Ordering::Relaxed);
            gone
        };
        if let Some(c) = gone.filter(|c| c.listed.load(Ordering::Relaxed)) {
            let key = (c.facts.connected_at_ms, c.facts.conn_id.clone());
            lock(&self.listed).remove(&key);
        }
    }

    /// Lists an authenticated connection in presence with its `entry` (serialized once;
    /// `presence::entry`) until it is unregistered.
    pub fn list(&self, c: &ConnStats, entry: Box<RawValue>) {
        c.listed.store(true, Ordering::Relaxed);
        let key = (c.facts.connected_at_ms, c.facts.conn_id.clone());
        lock(&self.listed).insert(key, Arc::from(entry));
    }

    /// The presence entries of the listed connections, oldest first.
    pub fn listed(&self) -> Vec<Arc<RawValue>> {
        lock(&self.listed).values().cloned().collect()
    }

    /// Number of open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.conn_count.load(Ordering::Relaxed)
    }

    /// Snapshot of all connections, oldest first.
    pub fn connections(&self) -> Vec<Arc<ConnStats>> {
        let mut v: Vec<_> = lock(&self.conns).values().cloned().collect();
        v.sort_by_key(|c| c.facts.connected_at_ms);
        v
    }

    /// Ids of the connections authenticated as device `device_id`.
    pub fn conns_of_device(&self, device_id: &str) -> Vec<String> {
        lock(&self.conns)
            .values()
            .filter(|c| {
                read(&c.identity)
                    .as_ref()
                    .is_some_and(|i| i.device_id.as_deref() == Some(device_id))
            })
            .map(|c| c.facts.conn_id.clone())
            .collect()
    }

    /// Notes a bound listener.
    pub fn add_listener(&self, addr: SocketAddr) {
        self.port.store(addr.port(), Ordering::Relaxed);
        let mut l = lock(&self.listeners);
        l.push(addr);
        self.set_urls(&l);
    }

    /// Forgets a listener.
    pub fn remove_listener(&self, addr: SocketAddr) {
        let mut l = lock(&self.listeners);
        l.retain(|x| *x != addr);
        self.set_urls(&l);
    }

    fn set_urls(&self, listeners: &[SocketAddr]) {
        let scheme = if self.scheme.is_empty() {
            "ws"
        } else {
            self.scheme
        };
        let urls = listeners
            .iter()
            .map(|a| format!("{scheme}://{a}"))
            .collect();
        *write(&self.urls) = Arc::new(urls);
    }

    /// Bound listener addresses.
    pub fn listeners(&self) -> Vec<SocketAddr> {
        lock(&self.listeners).clone()
    }

    /// `ws://` (or `wss://`) URLs of the listeners.
    pub fn listener_urls(&self) -> Vec<String> {
        self.urls().as_ref().clone()
    }

    /// The listener URLs without copying them.
    pub fn urls(&self) -> Arc<Vec<String>> {
        read(&self.urls).clone()
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }

    /// Whether shutdown has begun.
    pub fn stopping(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }
}

// === impl Counters ===

impl Default for Counters {
    fn default() -> Self {
        let z = || AtomicU64::new(0);
        Self {
            connections_total: z(),
            auth_ok: z(),
            auth_failed: z(),
            handshake_timeouts: z(),
            sessions_crashed: z(),
            requests: z(),
            requests_over_in_flight: z(),
            slow_consumers: z(),
            http_requests: z(),
            allowlist_denied: z(),
            forwarding_refused: z(),
            preauth_refused: z(),
            reloads: z(),
            reloads_failed: z(),
            presence_version: AtomicU64::new(1),
            health_version: AtomicU64::new(1),
        }
    }
}

impl Counters {
    /// Adds one to `c`.
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads `c`.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// `stateVersion` object.
    pub fn state_version(&self) -> Value {
        json!({
            "presence": Self::get(&self.presence_version),
            "health": Self::get(&self.health_version),
        })
    }
}

// === impl LiveConfig ===

impl LiveConfig {
    /// The cell for the settings a gateway starts with.
    pub fn new(settings: &Settings, secrets: Secrets, file_hash: String) -> Self {
        Self(RwLock::new(Arc::new(Live {
            settings: Arc::new(settings.clone()),
            file_hash,
            secrets,
            policy: settings.policy.clone(),
            lockout: settings.lockout,
            generation: 0,
            restart_pending: Vec::new(),
        })))
    }

    /// The hot-reloadable settings now.
    pub fn get(&self) -> Arc<Live> {
        read(&self.0).clone()
    }

    /// Swaps in new hot-reloadable settings.
    pub fn set(&self, live: Live) {
        *write(&self.0) = Arc::new(live);
    }
}

// === impl TunnelTable ===

impl TunnelTable {
    /// Publishes tunnel `name`'s row.
    pub fn set(&self, name: &str, row: Value) {
        lock(&self.0).insert(name.to_string(), row);
    }

    /// Forgets tunnel `name`'s row (it is no longer configured).
    pub fn remove(&self, name: &str) {
        lock(&self.0).remove(name);
    }

    /// Tunnel status rows, by name.
    pub fn rows(&self) -> Vec<Value> {
        lock(&self.0).values().cloned().collect()
    }
}

// === impl Hub ===

impl Hub {
    /// Every part for a gateway starting with `settings`.
    pub fn new(
        settings: Settings,
        audit: AuditHandle,
        runtime_token_path: Option<PathBuf>,
        secrets: Secrets,
        tls: Option<Arc<crate::tls::TlsState>>,
    ) -> Self {
        let file_hash = crate::config::load::file_hash(&settings.paths.config_path);
        let live = LiveConfig::new(&settings, secrets, file_hash);
        let limiter = Limiter::new(
            settings.policy.rate.unwrap_or_default(),
            crate::guard::limiter::DEFAULT_MAX_KEYS,
            Instant::now(),
        );
        let trace = audit.trace.clone();
        let metrics = crate::metrics::Metrics::default();
        let metrics_on = settings
            .file
            .gateway
            .metrics
            .as_ref()
            .and_then(|m| m.enabled)
            != Some(false);
        metrics
            .enabled
            .store(metrics_on, std::sync::atomic::Ordering::Relaxed);
        Self {
            registry: Arc::new(Registry::new(settings.port, tls.is_some())),
            facts: Arc::new(Facts::new(settings, runtime_token_path)),
            counters: Arc::default(),
            live: Arc::new(live),
            tunnels: Arc::default(),
            limiter: Arc::new(limiter),
            preauth: Arc::default(),
            conns: Arc::new(crate::guard::conncap::ConnTable::for_this_process()),
            health_cache: Arc::default(),
            audit,
            tls,
            nodes: Arc::default(),
            tailscale: Arc::default(),
            metrics: Arc::new(metrics),
            log: Arc::default(),
            trace,
        }
    }

    /// Settings as started.
    pub fn settings(&self) -> &Settings {
        &self.facts.settings
    }
}

/// Locks a mutex, recovering from poisoning (a panicking session must not wedge the registry).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads an `RwLock`, recovering from poisoning.
pub fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

/// Writes an `RwLock`, recovering from poisoning.
pub fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

// === impl ConnFacts ===

impl ConnFacts {
    /// A direct connection `c1` from `peer`, nothing forwarded (tests).
    #[cfg(test)]
    pub(crate) fn direct(peer: &str) -> Self {
        let peer: SocketAddr = peer.parse().expect("a socket address");
        ConnFacts {
            conn_id: "c1".into(),
            peer,
            client: peer.ip(),
            forwarded: false,
            origin: None,
            proxy_user: None,
            user_agent: None,
            connected_at_ms: 0,
            tailscale: None,
            peer_text: Default::default(),
        }
    }

    /// `peer` as text (`1.2.3.4:5678`, `[::1]:5678`), formatted once.
    pub fn peer_str(&self) -> &str {
        self.peer_text.get_or_init(|| self.peer.to_string())
    }

    /// Loopback without proxy headers or `Origin`: the local-client rules apply.
    pub fn is_local(&self) -> bool {
        self.peer.ip().is_loopback() && !self.forwarded && self.origin.is_none()
    }
}

// === impl ConnStats ===

impl ConnStats {
    /// Connection id.
    pub fn conn_id(&self) -> &str {
        &self.facts.conn_id
    }

    /// The row for `gateway.connections.list`.
    pub fn to_json(&self) -> Value {
        let id = read(&self.identity);
        let mut v = json!({
            "connId": self.facts.conn_id,
            "peer": self.facts.peer_str(),
            "connectedAt": self.facts.connected_at_ms,
            "authenticated": id.is_some(),
            "framesIn": self.frames_in.load(Ordering::Relaxed),
            "framesOut": self.frames_out.load(Ordering::Relaxed),
            "bytesIn": self.bytes_in.load(Ordering::Relaxed),
            "bytesOut": self.bytes_out.load(Ordering::Relaxed),
        });
        if let Some(i) = id.as_ref() {
            v["client"] = json!({
                "id": i.client_id, "mode": i.client_mode, "version": i.client_version,
                "platform": i.platform, "displayName": i.display_name,
            });
            v["role"] = json!(i.role);
            v["scopes"] = json!(i.scopes);
            v["authMethod"] = json!(i.auth_method);
            v["deviceId"] = json!(i.device_id);
            v["protocol"] = json!(i.protocol);
        }
        v
    }
}
