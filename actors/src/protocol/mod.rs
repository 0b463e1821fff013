//! The OpenClaw Gateway wire protocol, without I/O: frames, errors, version negotiation,
//! scopes, connect parameters, device signatures and the pre-auth frame-size guard.

pub mod connect;
pub mod device;
pub mod errors;
pub mod frame;
pub mod frame_guard;
pub mod negotiate;
pub mod scopes;

/// Highest protocol version this gateway speaks.
pub const PROTOCOL_VERSION: u32 = 4;
/// Lowest protocol version still accepted (v3 clients keep working).
pub const MIN_PROTOCOL_VERSION: u32 = 3;
/// Largest frame accepted before `hello-ok` (`MAX_PREAUTH_PAYLOAD_BYTES`).
pub const MAX_PREAUTH_PAYLOAD_BYTES: usize = 64 * 1024;
/// Largest frame accepted after `hello-ok`, advertised as `policy.maxPayload`.
pub const MAX_PAYLOAD_BYTES: usize = 25 * 1024 * 1024;
/// Outbound buffer ceiling per connection, advertised as `policy.maxBufferedBytes`.
pub const MAX_BUFFERED_BYTES: usize = 50 * 1024 * 1024;
/// Default `tick` interval, advertised as `policy.tickIntervalMs`.
pub const TICK_INTERVAL_MS: u64 = 30_000;
/// Default handshake timeout (`OPENCLAW_HANDSHAKE_TIMEOUT_MS`).
pub const HANDSHAKE_TIMEOUT_MS: u64 = 15_000;
/// WebSocket ping interval for authenticated sockets.
pub const WS_PING_INTERVAL_MS: u64 = 25_000;
/// Close reasons are cut to this many bytes (`CLOSE_REASON_MAX_BYTES`).
pub const CLOSE_REASON_MAX_BYTES: usize = 120;
/// Allowed clock skew for a device signature.
pub const DEVICE_SIGNATURE_SKEW_MS: i64 = 120_000;

/// Cuts a close reason to [`CLOSE_REASON_MAX_BYTES`] on a character boundary.
pub fn truncate_close_reason(reason: &str) -> String {
    if reason.len() <= CLOSE_REASON_MAX_BYTES {
        return reason.to_string();
    }
    let mut end = CLOSE_REASON_MAX_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn close_reason_is_cut_on_char_boundary() {
        let long = "é".repeat(100);
        let cut = super::truncate_close_reason(&long);
        assert!(cut.len() <= 120);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(super::truncate_close_reason("short"), "short");
    }
}
