//! State shared by reference across actors for the hot paths: per-connection counters that
//! the I/O tasks bump directly, the connection registry read by `status` and
//! `gateway.connections.list`, and gateway-wide counters. Actors own lifecycle; this only
//! holds numbers and snapshots, so no request needs an actor round trip to read them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::audit::AuditHandle;
use crate::config::Settings;

/// Version reported to clients.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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

/// Live numbers for one connection, bumped by its I/O task without locks.
#[derive(Debug)]
pub struct ConnStats {
    /// Connection id (uuid).
    pub conn_id: String,
    /// TCP peer.
    pub peer: SocketAddr,
    /// Accept time.
    pub connected_at_ms: i64,
    /// Set once authenticated.
    pub identity: RwLock<Option<Identity>>,
    /// Text frames received.
    pub frames_in: AtomicU64,
    /// Frames sent.
    pub frames_out: AtomicU64,
    /// Payload bytes received.
    pub bytes_in: AtomicU64,
    /// Payload bytes sent.
    pub bytes_out: AtomicU64,
}

/// Gateway-wide counters.
#[derive(Debug, Default)]
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
}

/// What hot reload may change, swapped whole (readers take a snapshot: one lock, one
/// `Arc` clone, then no lock while they use it).
#[derive(Debug, Clone)]
pub struct Live {
    /// The secrets in force (including a generated runtime token).
    pub secrets: crate::auth::rules::Secrets,
    /// Admission rules.
    pub policy: crate::guard::Policy,
    /// Auth-failure lockout.
    pub lockout: Option<crate::auth::lockout::LockoutConfig>,
    /// Bumped by each applied reload.
    pub generation: u64,
}

/// Everything shared, behind one `Arc`.
#[derive(Debug)]
pub struct Shared {
    /// Effective settings.
    pub settings: Settings,
    /// Start instant (uptime).
    pub started: Instant,
    /// Start time, ms since epoch.
    pub started_ms: i64,
    /// Random id of this process run.
    pub boot_id: String,
    /// The bound port (known after the first listener binds).
    pub port: AtomicU16,
    /// Bound listener addresses.
    pub listeners: Mutex<Vec<SocketAddr>>,
    /// Live connections by connId.
    pub conns: Mutex<HashMap<String, Arc<ConnStats>>>,
    /// Counters.
    pub counters: Counters,
    /// `stateVersion.presence`.
    pub presence_version: AtomicU64,
    /// `stateVersion.health`.
    pub health_version: AtomicU64,
    /// Audit producer handle.
    pub audit: AuditHandle,
    /// Where the generated runtime token lives, if one was generated or reused.
    pub runtime_token_path: Option<PathBuf>,
    /// Set when shutdown begins: new connections are refused.
    pub shutting_down: AtomicBool,
    /// SHA-256 (hex) of the config file as loaded, for `config.get`.
    pub config_hash: String,
    /// This machine's host name, for presence.
    pub hostname: String,
    /// Tunnel status rows by name, published by the Tunnel actors.
    pub tunnels: Mutex<std::collections::BTreeMap<String, Value>>,
    /// Hot-reloadable settings.
    pub live: RwLock<Arc<Live>>,
    /// The request rate limit's table (owned by the RateLimiter actor; checked in place).
    pub limiter: Arc<crate::guard::limiter::Limiter>,
    /// Pre-auth connections per client address.
    pub preauth: Arc<crate::guard::preauth::PreauthTable>,
}

// === impl Shared ===

impl Shared {
    /// Builds the shared state (reads the config file once, for its hash).
    pub fn new(
        settings: Settings,
        audit: AuditHandle,
        runtime_token_path: Option<PathBuf>,
        secrets: crate::auth::rules::Secrets,
    ) -> Self {
        let live = Live {
            secrets,
            policy: settings.policy.clone(),
            lockout: settings.lockout,
            generation: 0,
        };
        let limiter = crate::guard::limiter::Limiter::new(
            settings.policy.rate.unwrap_or_default(),
            crate::guard::limiter::DEFAULT_MAX_KEYS,
            Instant::now(),
        );
        let raw = std::fs::read(&settings.paths.config_path).unwrap_or_default();
        let config_hash = crate::protocol::device::device_id(&raw);
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        Self {
            port: AtomicU16::new(settings.port),
            settings,
            started: Instant::now(),
            started_ms: now_ms(),
            boot_id: uuid::Uuid::new_v4().to_string(),
            listeners: Mutex::new(Vec::new()),
            conns: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            presence_version: AtomicU64::new(1),
            health_version: AtomicU64::new(1),
            audit,
            runtime_token_path,
            shutting_down: AtomicBool::new(false),
            config_hash,
            hostname,
            tunnels: Mutex::new(Default::default()),
            live: RwLock::new(Arc::new(live)),
            limiter: Arc::new(limiter),
            preauth: Arc::default(),
        }
    }

    /// The hot-reloadable settings now.
    pub fn live(&self) -> Arc<Live> {
        self.live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Swaps in new hot-reloadable settings.
    pub fn set_live(&self, live: Live) {
        *self
            .live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(live);
    }

    /// Uptime in ms.
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Registers a new connection and returns its stats.
    pub fn register(&self, conn_id: &str, peer: SocketAddr) -> Arc<ConnStats> {
        let stats = Arc::new(ConnStats {
            conn_id: conn_id.to_string(),
            peer,
            connected_at_ms: now_ms(),
            identity: RwLock::new(None),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        });
        self.counters
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
        lock(&self.conns).insert(conn_id.to_string(), stats.clone());
        stats
    }

    /// Removes a connection.
    pub fn unregister(&self, conn_id: &str) {
        lock(&self.conns).remove(conn_id);
    }

    /// Number of open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.conns).len()
    }

    /// Snapshot of all connections.
    pub fn connections(&self) -> Vec<Arc<ConnStats>> {
        let mut v: Vec<_> = lock(&self.conns).values().cloned().collect();
        v.sort_by_key(|c| c.connected_at_ms);
        v
    }

    /// `ws://` URLs of the listeners.
    pub fn listener_urls(&self) -> Vec<String> {
        lock(&self.listeners)
            .iter()
            .map(|a| format!("ws://{a}"))
            .collect()
    }

    /// The auth mode name for `hello-ok.snapshot.authMode` and `status`.
    pub fn auth_mode_name(&self) -> &'static str {
        match self.settings.auth.mode {
            crate::config::AuthMode::None => "none",
            crate::config::AuthMode::Token => "token",
            crate::config::AuthMode::Password => "password",
            crate::config::AuthMode::TrustedProxy => "trusted-proxy",
        }
    }

    /// Tunnel status rows.
    pub fn tunnel_rows(&self) -> Vec<Value> {
        lock(&self.tunnels).values().cloned().collect()
    }

    /// `stateVersion` object.
    pub fn state_version(&self) -> Value {
        json!({
            "presence": self.presence_version.load(Ordering::Relaxed),
            "health": self.health_version.load(Ordering::Relaxed),
        })
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

// === impl ConnStats ===

impl ConnStats {
    /// The row for `gateway.connections.list`.
    pub fn to_json(&self) -> Value {
        let id = read(&self.identity);
        let mut v = json!({
            "connId": self.conn_id,
            "peer": self.peer.to_string(),
            "connectedAt": self.connected_at_ms,
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
