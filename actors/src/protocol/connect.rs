//! `connect` parameters: lenient parsing, enum checks and the scope-retention rule
//! (PROTOCOL §2.2, §2.5).

use serde::Deserialize;
use serde_json::Value;

use super::device::DeviceBlock;

/// Allowed `client.id` values (2026.9.6).
pub const CLIENT_IDS: &[&str] = &[
    "cli",
    "gateway-client",
    "openclaw-control-ui",
    "webchat-ui",
    "webchat",
    "openclaw-tui",
    "openclaw-macos",
    "openclaw-linux",
    "openclaw-ios",
    "openclaw-watchos",
    "openclaw-android",
    "node-host",
    "openclaw-worker",
    "openclaw-browser-copilot",
    "test",
    "fingerprint",
    "openclaw-probe",
];

/// Allowed `client.mode` values.
pub const CLIENT_MODES: &[&str] = &[
    "webchat", "cli", "ui", "backend", "node", "worker", "probe", "test",
];

/// `params` of the `connect` request. Unknown keys are ignored (clients add fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectParams {
    /// Lowest protocol the client speaks.
    pub min_protocol: u64,
    /// Highest protocol the client speaks.
    pub max_protocol: u64,
    /// Who the client is.
    pub client: ClientInfo,
    /// `operator` (default) or `node`.
    #[serde(default)]
    pub role: Option<String>,
    /// Requested scopes, in the order sent (part of the device signature).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Shared secret or device token.
    #[serde(default)]
    pub auth: Option<ConnectAuth>,
    /// Signed device identity.
    #[serde(default)]
    pub device: Option<DeviceBlock>,
    /// Node capabilities.
    #[serde(default)]
    pub caps: Option<Value>,
    /// Node commands.
    #[serde(default)]
    pub commands: Option<Value>,
    /// Node `PATH`.
    #[serde(default)]
    pub path_env: Option<Value>,
}

/// `client` block of `connect`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    /// One of [`CLIENT_IDS`].
    pub id: String,
    /// Client version string.
    pub version: String,
    /// Platform (`linux`, `darwin`, …).
    pub platform: String,
    /// One of [`CLIENT_MODES`].
    pub mode: String,
    /// Shown in presence.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Device family, part of the v3 signature.
    #[serde(default)]
    pub device_family: Option<String>,
    /// Client instance id.
    #[serde(default)]
    pub instance_id: Option<String>,
}

/// `auth` block of `connect`. All strings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectAuth {
    /// Gateway token (or a device token).
    #[serde(default)]
    pub token: Option<String>,
    /// Gateway password.
    #[serde(default)]
    pub password: Option<String>,
    /// Device token issued earlier.
    #[serde(default)]
    pub device_token: Option<String>,
    /// Bootstrap token.
    #[serde(default)]
    pub bootstrap_token: Option<String>,
}

/// Why `connect` params are rejected: the message after `invalid connect params: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamsError(pub String);

// === impl ConnectParams ===

impl ConnectParams {
    /// Parses and checks the enums. Errors read like the real gateway's (`at /client/id: …`).
    pub fn parse(params: Option<&Value>) -> Result<Self, ParamsError> {
        let v = params.ok_or_else(|| ParamsError("must be object".into()))?;
        let p: ConnectParams = serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string().replace('.', "/");
            ParamsError(format!("at /{path}: {}", e.inner()))
        })?;
        if !CLIENT_IDS.contains(&p.client.id.as_str()) {
            return Err(ParamsError(
                "at /client/id: must be equal to one of the allowed values".into(),
            ));
        }
        if !CLIENT_MODES.contains(&p.client.mode.as_str()) {
            return Err(ParamsError(
                "at /client/mode: must be equal to one of the allowed values".into(),
            ));
        }
        if p.min_protocol < 1 || p.max_protocol < 1 {
            return Err(ParamsError("at /minProtocol: must be >= 1".into()));
        }
        Ok(p)
    }

    /// The requested role (`operator` when absent).
    pub fn role(&self) -> &str {
        self.role.as_deref().unwrap_or("operator")
    }

    /// Requested scopes (empty when absent).
    pub fn requested_scopes(&self) -> &[String] {
        self.scopes.as_deref().unwrap_or(&[])
    }

    /// The token the device signature covers: `auth.token ?? auth.deviceToken ??
    /// auth.bootstrapToken ?? ""`.
    pub fn signature_token(&self) -> &str {
        let a = match &self.auth {
            Some(a) => a,
            None => return "",
        };
        a.token
            .as_deref()
            .or(a.device_token.as_deref())
            .or(a.bootstrap_token.as_deref())
            .unwrap_or("")
    }
}

/// Whether a device-less shared-secret client keeps its requested scopes: only local
/// `cli`/`cli` and `gateway-client`/`backend` do; everyone else gets `[]`.
pub fn keeps_requested_scopes(client_id: &str, client_mode: &str, local: bool) -> bool {
    local
        && matches!(
            (client_id, client_mode),
            ("cli", "cli") | ("gateway-client", "backend")
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"minProtocol":4,"maxProtocol":4,
               "client":{"id":"cli","version":"1","platform":"linux","mode":"cli"},
               "auth":{"token":"t"},"extraFieldFromTheFuture":true})
    }

    #[test]
    fn lenient_parse() {
        let p = ConnectParams::parse(Some(&base())).unwrap();
        assert_eq!(p.role(), "operator");
        assert_eq!(p.signature_token(), "t");
        assert!(p.requested_scopes().is_empty());
    }

    #[test]
    fn rejects_bad_enums_and_shapes() {
        let mut bad_id = base();
        bad_id["client"]["id"] = json!("bogus-client");
        let mut bad_mode = base();
        bad_mode["client"]["mode"] = json!("x");
        let mut no_client = base();
        no_client.as_object_mut().unwrap().remove("client");
        let mut bad_min = base();
        bad_min["minProtocol"] = json!("four");
        let cases = [
            (
                bad_id,
                "at /client/id: must be equal to one of the allowed values",
            ),
            (
                bad_mode,
                "at /client/mode: must be equal to one of the allowed values",
            ),
            (no_client, "client"),
            (bad_min, "minProtocol"),
        ];
        for (v, want) in cases {
            let e = ConnectParams::parse(Some(&v)).unwrap_err();
            assert!(e.0.contains(want), "{e} should contain {want}");
        }
        assert!(ConnectParams::parse(None).is_err());
    }

    #[test]
    fn signature_token_precedence() {
        let mut v = base();
        v["auth"] = json!({"deviceToken":"d","bootstrapToken":"b"});
        assert_eq!(
            ConnectParams::parse(Some(&v)).unwrap().signature_token(),
            "d"
        );
        v["auth"] = json!({"bootstrapToken":"b"});
        assert_eq!(
            ConnectParams::parse(Some(&v)).unwrap().signature_token(),
            "b"
        );
        v.as_object_mut().unwrap().remove("auth");
        assert_eq!(
            ConnectParams::parse(Some(&v)).unwrap().signature_token(),
            ""
        );
    }

    #[test]
    fn scope_retention_table() {
        let cases = [
            ("cli", "cli", true, true),
            ("gateway-client", "backend", true, true),
            ("cli", "probe", true, false),
            ("cli", "cli", false, false),
            ("openclaw-tui", "ui", true, false),
            ("gateway-client", "cli", true, false),
        ];
        for (id, mode, local, want) in cases {
            assert_eq!(
                keeps_requested_scopes(id, mode, local),
                want,
                "{id}/{mode} local={local}"
            );
        }
    }
}
