//! The config file schema (`openclaw.json`, JSON5). Keys are camelCase exactly as in the seed
//! and PROTOCOL §6; unknown keys are rejected. Every field is optional in the file: defaults
//! live in named constants and are applied in [`super::resolve`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secret::Secret;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileConfig {
    /// Gateway settings.
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// Browser control settings (only `cdpUrl` matters to the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserConfig>,
    /// SSH tunnels kept up by the gateway or `openclaw tunnel run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnels: Option<Vec<super::tunnels::TunnelConfig>>,
    /// Diagnostic logging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingConfig>,
    /// The audit log's rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditConfig>,
}

/// `gateway.*`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayConfig {
    /// `local` (run a gateway here) or `remote` (this machine is a client).
    pub mode: Option<GatewayMode>,
    /// Listening port (default 18789).
    pub port: Option<u16>,
    /// `loopback` | `lan` | `tailnet` | `custom` | `auto`.
    pub bind: Option<String>,
    /// Address for `bind: "custom"`.
    pub custom_bind_host: Option<String>,
    /// Public origin shown to browsers.
    pub public_origin: Option<String>,
    /// Authentication.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Request rate limit (`{enabled, maxRequests, windowMs, maxConnections}`).
    pub rate_limit: Option<RateLimitConfig>,
    /// IP allowlist (addresses and CIDRs).
    #[serde(rename = "allowedIPs")]
    pub allowed_ips: Option<Vec<String>>,
    /// Whether loopback peers pass the allowlist (default true).
    pub allow_loopback: Option<bool>,
    /// Tailscale serve/funnel.
    pub tailscale: Option<TailscaleConfig>,
    /// TLS on the gateway port.
    pub tls: Option<TlsConfig>,
    /// Where clients on this machine find a remote gateway.
    pub remote: Option<RemoteConfig>,
    /// Proxies whose forwarded headers are honoured.
    pub trusted_proxies: Option<Vec<String>>,
    /// Allow `X-Real-IP` when `X-Forwarded-For` is missing.
    pub allow_real_ip_fallback: Option<bool>,
    /// Control UI settings (served by the real gateway; accepted for compatibility).
    pub control_ui: Option<ControlUiConfig>,
    /// Node pairing and command policy.
    pub nodes: Option<NodesConfig>,
    /// Config hot reload.
    pub reload: Option<ReloadConfig>,
    /// Prometheus `/metrics`.
    pub metrics: Option<MetricsConfig>,
    /// Caps on open connections (`{max, perAddress, loopbackReserve}`), checked at accept.
    pub connections: Option<ConnectionsConfig>,
    /// Handshake timeout in ms (default 15000; env `OPENCLAW_HANDSHAKE_TIMEOUT_MS`).
    pub handshake_timeout_ms: Option<u64>,
    /// `tick` interval in ms (default 30000).
    pub tick_interval_ms: Option<u64>,
    /// Grace period for shutdown in ms (default 5000).
    pub shutdown_grace_ms: Option<u64>,
}

/// `gateway.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayMode {
    /// Run a gateway on this machine.
    Local,
    /// This machine is a client of `gateway.remote.url`.
    Remote,
}

/// `gateway.auth.*`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthConfig {
    /// `none` | `token` | `password` | `trusted-proxy`.
    pub mode: Option<String>,
    /// Shared token.
    pub token: Option<Secret>,
    /// Shared password.
    pub password: Option<Secret>,
    /// Accept Tailscale identity headers.
    pub allow_tailscale: Option<bool>,
    /// Trusted-proxy auth settings.
    pub trusted_proxy: Option<TrustedProxyConfig>,
    /// Scopes granted to identity-authenticated users: a list for everyone, or (Tailscale
    /// identity auth) `{ "<login>": [scopes] }` per login.
    pub identity_scopes: Option<IdentityScopes>,
    /// Auth-failure lockout (and, in the seed's spelling, the request rate limit).
    pub rate_limit: Option<AuthRateLimitConfig>,
    /// Strength rules for tokens and passwords.
    pub token_validation: Option<TokenValidationConfig>,
}

/// `gateway.auth.trustedProxy`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrustedProxyConfig {
    /// Header naming the authenticated user.
    pub user_header: Option<String>,
    /// Headers that must be present.
    pub required_headers: Option<Vec<String>>,
    /// Users allowed in.
    pub allow_users: Option<Vec<String>>,
    /// Whether a loopback proxy is allowed.
    pub allow_loopback: Option<bool>,
}

/// `gateway.auth.rateLimit`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthRateLimitConfig {
    /// Switch (seed spelling).
    pub enabled: Option<bool>,
    /// Failures allowed per window (default 10).
    pub max_attempts: Option<u32>,
    /// Window in ms.
    pub window_ms: Option<u64>,
    /// Lockout in ms (default 300000).
    pub lockout_ms: Option<u64>,
    /// Loopback never locked out (default true).
    pub exempt_loopback: Option<bool>,
    /// Requests per window (seed spelling of `gateway.rateLimit.maxRequests`).
    pub max_requests: Option<u32>,
}

/// `gateway.auth.tokenValidation`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TokenValidationConfig {
    /// Minimum length (default 32).
    pub min_length: Option<usize>,
    /// Letters and digits only, at least one of each.
    pub require_alphanumeric: Option<bool>,
}

/// `gateway.rateLimit`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitConfig {
    /// Switch.
    pub enabled: Option<bool>,
    /// Requests per window per client (default 100).
    pub max_requests: Option<u32>,
    /// Window in ms (default 60000).
    pub window_ms: Option<u64>,
    /// Concurrent connections per client (default 10).
    pub max_connections: Option<u32>,
    /// Whether loopback is exempt (default false).
    pub exempt_loopback: Option<bool>,
}

/// `gateway.auth.identityScopes`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum IdentityScopes {
    /// The same scopes for every verified identity.
    All(Vec<String>),
    /// Scopes per login (matched case-insensitively).
    PerLogin(std::collections::BTreeMap<String, Vec<String>>),
}

/// `gateway.metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricsConfig {
    /// Serve `/metrics` (default true).
    pub enabled: Option<bool>,
    /// Let anyone who can reach the port read it without the token (default false:
    /// loopback callers read it freely, others need `Authorization: Bearer <token>`).
    pub public: Option<bool>,
}

/// `gateway.tailscale`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TailscaleConfig {
    /// `off` | `serve` | `funnel`.
    pub mode: Option<String>,
    /// Keep a funnel route on exit.
    pub preserve_funnel: Option<bool>,
    /// `tailnet` binds the Tailscale address.
    pub bind: Option<String>,
    /// Identity auth.
    pub auth: Option<TailscaleAuthConfig>,
    /// Allowlist for tailnet peers.
    #[serde(rename = "allowedIPs")]
    pub allowed_ips: Option<Vec<String>>,
}

/// `gateway.tailscale.auth`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TailscaleAuthConfig {
    /// Switch.
    pub enabled: Option<bool>,
    /// Login names allowed in (`user@github`).
    pub allowed_users: Option<Vec<String>>,
}

/// `gateway.tls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsConfig {
    /// Serve HTTPS+WSS on the gateway port.
    pub enabled: Option<bool>,
    /// Create a self-signed pair when both files are missing.
    pub auto_generate: Option<bool>,
    /// Certificate file (seed spelling).
    pub cert: Option<String>,
    /// Certificate file.
    pub cert_path: Option<String>,
    /// Key file (seed spelling).
    pub key: Option<String>,
    /// Key file.
    pub key_path: Option<String>,
    /// CA bundle.
    pub ca_path: Option<String>,
    /// Lowest TLS version accepted: `"1.3"` (default) or `"1.2"`.
    pub min_version: Option<String>,
}

/// `gateway.remote`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RemoteConfig {
    /// `ws://` or `wss://` URL of the remote gateway.
    pub url: Option<String>,
    /// `ssh` | `direct`.
    pub transport: Option<String>,
    /// Token for the remote gateway.
    pub token: Option<Secret>,
    /// Password for the remote gateway.
    pub password: Option<Secret>,
    /// `sha256:` fingerprint of the remote TLS certificate.
    pub tls_fingerprint: Option<String>,
    /// `user@host[:port]`.
    pub ssh_target: Option<String>,
    /// SSH identity file.
    pub ssh_identity: Option<String>,
    /// Gateway port on the remote host.
    pub remote_port: Option<u16>,
    /// `strict` | `openssh`.
    pub ssh_host_key_policy: Option<String>,
    /// Extra edge auth settings.
    pub edge_auth: Option<Value>,
}

/// `gateway.controlUi`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlUiConfig {
    /// Switch.
    pub enabled: Option<bool>,
    /// URL prefix.
    pub base_path: Option<String>,
    /// Browser origins allowed to connect.
    pub allowed_origins: Option<Vec<String>>,
    /// Legacy fallback.
    pub dangerously_allow_host_header_origin_fallback: Option<bool>,
}

/// `gateway.nodes`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodesConfig {
    /// Pairing policy.
    pub pairing: Option<PairingConfig>,
    /// Command allow/deny lists.
    pub commands: Option<NodeCommandsConfig>,
}

/// `gateway.nodes.pairing`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PairingConfig {
    /// Approve loopback devices silently (default true).
    pub auto_approve_local: Option<bool>,
    /// Approve devices from these CIDRs.
    pub auto_approve_cidrs: Option<Vec<String>>,
    /// Verify via SSH.
    pub ssh_verify: Option<bool>,
}

/// `gateway.nodes.commands`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeCommandsConfig {
    /// Allowed commands.
    pub allow: Option<Vec<String>>,
    /// Denied commands.
    pub deny: Option<Vec<String>>,
}

/// `gateway.reload`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReloadConfig {
    /// `hybrid` | `off`.
    pub mode: Option<String>,
}

/// `browser.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BrowserConfig {
    /// Chrome DevTools Protocol URL. Never share it: CDP is full browser control.
    pub cdp_url: Option<String>,
}

/// `logging.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoggingConfig {
    /// `error` | `warn` | `info` | `debug` | `trace`.
    pub level: Option<String>,
    /// Gateway log file (default `<stateDir>/logs/gateway.log`).
    pub file: Option<String>,
}

/// `audit.*`: rotation of `<stateDir>/logs/audit.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuditConfig {
    /// Rotate before a batch would make the file larger than this (default 64 MiB, at
    /// least 4096).
    pub max_bytes: Option<u64>,
    /// Rotated files kept, `audit.jsonl.1` … `audit.jsonl.<keep>` (default 10, at least 1).
    pub keep: Option<u32>,
}

/// `gateway.connections`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectionsConfig {
    /// Open connections in all (default: what the open-file limit leaves room for; never
    /// more).
    pub max: Option<u32>,
    /// Open connections from one remote address that is not a trusted proxy (default 256).
    pub per_address: Option<u32>,
    /// Slots of `max` that only loopback peers may use (default 32).
    pub loopback_reserve: Option<u32>,
}
