//! Pure authentication rules for a `connect` (PROTOCOL §2.4–§2.7, §5): shared-secret check,
//! device proof, scope retention and pairing. No I/O; `now` is passed in.

use serde_json::json;

use crate::config::AuthMode;
use crate::protocol::connect::{keeps_requested_scopes, ConnectParams};
use crate::protocol::device::{self, DeviceError, SignatureContext};
use crate::protocol::errors::{code, ErrorShape};
use crate::secret::Secret;

/// The configured secrets.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// Mode.
    pub mode: AuthMode,
    /// Token.
    pub token: Option<Secret>,
    /// Password.
    pub password: Option<Secret>,
}

/// Result of the shared-secret check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretCheck {
    /// Valid; the method name for `hello-ok.auth.method`.
    Ok(&'static str),
    /// No credential presented.
    Missing,
    /// Wrong credential; the reason code (`token_mismatch`, …).
    Failed(&'static str),
}

/// What the pairing store knows about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pairing {
    /// Approved earlier.
    Paired {
        /// The device token it was issued for the requested role (`None`: paired under
        /// another role, so no token of it is valid for this one).
        token: Option<String>,
        /// The scopes it was approved with (a device-token login gets at most these).
        scopes: Vec<String>,
    },
    /// Unknown.
    Unknown,
}

/// The decision for one `connect`.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Accepted.
    Accept {
        /// `none` | `token` | `password` | `device-token`.
        method: &'static str,
        /// Granted scopes.
        scopes: Vec<String>,
        /// Verified device id.
        device_id: Option<String>,
        /// Approve this device now (local auto-approval).
        approve_device: bool,
    },
    /// Rejected: send `error`, then close 1008 with `close_reason`.
    Reject {
        /// The `res` error.
        error: ErrorShape,
        /// Machine reason for the audit log.
        reason: String,
        /// Whether the failure counts as a wrong credential (for lockout).
        wrong_credential: bool,
    },
    /// Device not approved yet and not local.
    NeedsPairing {
        /// Device id.
        device_id: String,
    },
}

/// Checks the presented secret in constant time. Either wire field may carry it
/// (`auth[mode] ?? auth[other]`).
pub fn check_secret(secrets: &Secrets, params: &ConnectParams) -> SecretCheck {
    let auth = params.auth.clone().unwrap_or_default();
    let present = |v: &Option<String>| v.clone().filter(|s| !Secret::new(s.clone()).is_unset());
    let (configured, presented, method, mismatch) = match secrets.mode {
        AuthMode::None => return SecretCheck::Ok("none"),
        AuthMode::TrustedProxy => return SecretCheck::Failed("trusted_proxy_required"),
        AuthMode::Token => (
            &secrets.token,
            present(&auth.token).or(present(&auth.password)),
            "token",
            "token_mismatch",
        ),
        AuthMode::Password => (
            &secrets.password,
            present(&auth.password).or(present(&auth.token)),
            "password",
            "password_mismatch",
        ),
    };
    let Some(presented) = presented else {
        return SecretCheck::Missing;
    };
    match configured {
        Some(c) if c.matches(&presented) => SecretCheck::Ok(method),
        Some(_) => SecretCheck::Failed(mismatch),
        None => SecretCheck::Failed(if method == "token" {
            "token_missing_config"
        } else {
            "password_missing_config"
        }),
    }
}

/// The `INVALID_REQUEST` auth error for a reason code (PROTOCOL §2.7).
pub fn auth_error(reason: &str, local: bool) -> ErrorShape {
    let hint = if local {
        "use this gateway's gateway.auth.token or pair the device"
    } else {
        "set gateway.remote.token to match gateway.auth.token"
    };
    let (message, detail) = match reason {
        "token_missing" => (format!("unauthorized: gateway token missing ({hint})"), "AUTH_TOKEN_MISSING"),
        "token_mismatch" => (format!("unauthorized: gateway token mismatch ({hint})"), "AUTH_TOKEN_MISMATCH"),
        "token_missing_config" => (
            "unauthorized: gateway token not configured on gateway (set gateway.auth.token)".to_string(),
            "AUTH_TOKEN_NOT_CONFIGURED",
        ),
        "password_missing" => (
            "unauthorized: gateway password missing (set gateway.remote.password to match gateway.auth.password)".to_string(),
            "AUTH_PASSWORD_MISSING",
        ),
        "password_mismatch" => (
            "unauthorized: gateway password mismatch (set gateway.remote.password to match gateway.auth.password)".to_string(),
            "AUTH_PASSWORD_MISMATCH",
        ),
        "password_missing_config" => (
            "unauthorized: gateway password not configured on gateway (set gateway.auth.password)".to_string(),
            "AUTH_PASSWORD_NOT_CONFIGURED",
        ),
        _ => ("unauthorized".to_string(), "AUTH_UNAUTHORIZED"),
    };
    ErrorShape::new(code::INVALID_REQUEST, message).with_details(json!({
        "code": detail,
        "authReason": reason,
        "canRetryWithDeviceToken": false,
        "recommendedNextStep": "update_auth_credentials",
    }))
}

/// `unauthorized: device token mismatch` (the device token is wrong, revoked, or the
/// device is no longer paired).
pub fn device_token_mismatch() -> ErrorShape {
    ErrorShape::new(
        code::INVALID_REQUEST,
        "unauthorized: device token mismatch (rotate/reissue device token)",
    )
    .with_details(json!({
        "code": "AUTH_DEVICE_TOKEN_MISMATCH",
        "authReason": "device_token_mismatch",
        "canRetryWithDeviceToken": false,
        "recommendedNextStep": "update_auth_credentials",
    }))
}

/// `NOT_PAIRED "device identity required"`.
pub fn device_identity_required() -> ErrorShape {
    ErrorShape::new(code::NOT_PAIRED, "device identity required")
        .with_details(json!({"code": "DEVICE_IDENTITY_REQUIRED"}))
}

/// A Tailscale login verified with `tailscale whois` on the managed listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailscaleUser {
    /// The login (as whois names it).
    pub login: String,
    /// Whether `gateway.tailscale.auth.allowedUsers` lets it in.
    pub allowed: bool,
    /// Scopes `gateway.auth.identityScopes` adds for it.
    pub extra_scopes: Vec<String>,
}

/// `unauthorized: tailscale user … is not allowed`.
pub fn tailscale_not_allowed(login: &str) -> ErrorShape {
    ErrorShape::new(
        code::INVALID_REQUEST,
        format!(
            "unauthorized: tailscale user {login} is not in gateway.tailscale.auth.allowedUsers \
             (ask the gateway's owner to add it)"
        ),
    )
    .with_details(json!({
        "code": "AUTH_TAILSCALE_USER_NOT_ALLOWED",
        "authReason": "tailscale_user_not_allowed",
        "canRetryWithDeviceToken": false,
        "recommendedNextStep": "update_auth_credentials",
    }))
}

/// Decides a `connect`. `local` = loopback socket without proxy headers or `Origin`.
pub fn decide(
    secrets: &Secrets,
    params: &ConnectParams,
    challenge_nonce: &str,
    local: bool,
    pairing: impl Fn(&str) -> Pairing,
    now_ms: i64,
) -> Verdict {
    decide_with(
        secrets,
        params,
        challenge_nonce,
        local,
        pairing,
        now_ms,
        None,
    )
}

/// [`decide`] with a verified Tailscale login: when no token or password is sent it is the
/// credential (`method: tailscale`) if `allowedUsers` lets it in; a device identity is still
/// required and a new device still needs pairing.
#[allow(clippy::too_many_arguments)]
pub fn decide_with(
    secrets: &Secrets,
    params: &ConnectParams,
    challenge_nonce: &str,
    local: bool,
    pairing: impl Fn(&str) -> Pairing,
    now_ms: i64,
    tailscale: Option<&TailscaleUser>,
) -> Verdict {
    let reject = |error: ErrorShape, reason: &str, wrong: bool| Verdict::Reject {
        error,
        reason: reason.to_string(),
        wrong_credential: wrong,
    };
    let role = params.role();
    let device_id = match &params.device {
        Some(d) => {
            let ctx = SignatureContext {
                client_id: &params.client.id,
                client_mode: &params.client.mode,
                role,
                scopes: params.requested_scopes(),
                token: params.signature_token(),
                platform: Some(params.client.platform.as_str()),
                device_family: params.client.device_family.as_deref(),
            };
            if let Err(e) = device::verify(d, &ctx, challenge_nonce, now_ms) {
                let (c, _) = e.codes();
                return reject(e.to_error(), c, e == DeviceError::SignatureInvalid);
            }
            Some(d.id.clone())
        }
        None => None,
    };
    let presented_device_token = params
        .auth
        .as_ref()
        .and_then(|a| a.device_token.as_deref())
        .filter(|t| !t.is_empty());
    let mut token_scopes = None;
    let method = match check_secret(secrets, params) {
        SecretCheck::Ok(m) => m,
        SecretCheck::Failed(reason) => return reject(auth_error(reason, local), reason, true),
        SecretCheck::Missing if presented_device_token.is_some() && device_id.is_some() => {
            let (id, presented) = (
                device_id.as_deref().unwrap_or(""),
                presented_device_token.unwrap_or(""),
            );
            match pairing(id) {
                Pairing::Paired {
                    token: Some(t),
                    scopes,
                } if super::tokens::same(&t, presented) => {
                    token_scopes = Some(scopes);
                    "device-token"
                }
                _ => return reject(device_token_mismatch(), "device_token_mismatch", true),
            }
        }
        SecretCheck::Missing if tailscale.is_some_and(|t| !t.allowed) => {
            let login = tailscale.map_or("", |t| t.login.as_str());
            return reject(
                tailscale_not_allowed(login),
                "tailscale_user_not_allowed",
                false,
            );
        }
        SecretCheck::Missing if tailscale.is_some() && device_id.is_some() => "tailscale",
        SecretCheck::Missing if device_id.is_none() => {
            return reject(
                device_identity_required(),
                "device_identity_required",
                false,
            )
        }
        SecretCheck::Missing => {
            let reason = if secrets.mode == AuthMode::Password {
                "password_missing"
            } else {
                "token_missing"
            };
            return reject(auth_error(reason, local), reason, false);
        }
    };
    let mut requested = params.requested_scopes().to_vec();
    if method == "tailscale" {
        for s in tailscale
            .map(|t| t.extra_scopes.clone())
            .unwrap_or_default()
        {
            if !requested.contains(&s) {
                requested.push(s);
            }
        }
    }
    match device_id {
        None if role == "node" => reject(
            device_identity_required(),
            "device_identity_required",
            false,
        ),
        None => Verdict::Accept {
            method,
            scopes: if keeps_requested_scopes(&params.client.id, &params.client.mode, local) {
                requested
            } else {
                Vec::new()
            },
            device_id: None,
            approve_device: false,
        },
        Some(id) => match (pairing(&id), local) {
            (Pairing::Paired { .. }, _) => Verdict::Accept {
                method,
                // A device token grants at most what the device was approved for.
                scopes: match token_scopes {
                    Some(approved) => requested
                        .into_iter()
                        .filter(|s| crate::protocol::scopes::satisfies(&approved, s))
                        .collect(),
                    None => requested,
                },
                device_id: Some(id),
                approve_device: false,
            },
            (Pairing::Unknown, true) => Verdict::Accept {
                method,
                scopes: requested,
                device_id: Some(id),
                approve_device: true,
            },
            (Pairing::Unknown, false) => Verdict::NeedsPairing { device_id: id },
        },
    }
}

/// Auth mode `trusted-proxy` (PROTOCOL §5): the user a trusted proxy names is the credential
/// and gets `identityScopes` (intersected with what the client asks for); a local-direct
/// connection may fall back to the password; anyone else is refused.
#[allow(clippy::too_many_arguments)]
pub fn decide_trusted_proxy(
    secrets: &Secrets,
    proxy: &crate::guard::ProxyAuth,
    user: Option<&Result<String, &'static str>>,
    params: &ConnectParams,
    challenge_nonce: &str,
    local: bool,
    pairing: impl Fn(&str) -> Pairing,
    now_ms: i64,
) -> Verdict {
    match user {
        Some(Ok(_)) => {
            let scopes = params
                .requested_scopes()
                .iter()
                .filter(|s| crate::protocol::scopes::satisfies(&proxy.identity_scopes, s))
                .cloned()
                .collect();
            Verdict::Accept {
                method: "trusted-proxy",
                scopes,
                device_id: None,
                approve_device: false,
            }
        }
        _ if local && secrets.password.is_some() => {
            let fallback = Secrets {
                mode: AuthMode::Password,
                ..secrets.clone()
            };
            decide(&fallback, params, challenge_nonce, local, pairing, now_ms)
        }
        other => {
            let reason = match other {
                Some(Err(r)) => *r,
                _ => "trusted_proxy_not_proxied",
            };
            let error = ErrorShape::new(
                code::INVALID_REQUEST,
                format!(
                    "unauthorized: the trusted proxy did not authenticate this connection \
                     ({reason}); connect through the proxy in gateway.trustedProxies"
                ),
            )
            .with_details(json!({
                "code": "AUTH_TRUSTED_PROXY",
                "authReason": reason,
                "canRetryWithDeviceToken": false,
                "recommendedNextStep": "update_auth_credentials",
            }));
            Verdict::Reject {
                error,
                reason: reason.to_string(),
                wrong_credential: false,
            }
        }
    }
}

/// `NOT_PAIRED "pairing required: …"` and its close reason (the exact format openclaw-node
/// parses: `pairing required: <text> (requestId: <id>)`).
pub fn pairing_required(device_id: &str, request_id: &str, role: &str) -> (ErrorShape, String) {
    let text = "device is not approved yet";
    let error = ErrorShape::new(code::NOT_PAIRED, format!("pairing required: {text}"))
        .with_details(json!({
            "code": "PAIRING_REQUIRED",
            "reason": "not-paired",
            "requestId": request_id,
            "remediationHint": "Approve this device from the pending pairing requests.",
            "deviceId": device_id,
            "requestedRole": role,
        }));
    (
        error,
        format!("pairing required: {text} (requestId: {request_id})"),
    )
}

#[cfg(test)]
mod tests;
