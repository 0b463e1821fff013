//! Operator scopes and the scope each method needs (PROTOCOL §2.2, §4).

/// Read-only operator access.
pub const READ: &str = "operator.read";
/// Write access; satisfies `read` and `talk`.
pub const WRITE: &str = "operator.write";
/// Everything.
pub const ADMIN: &str = "operator.admin";
/// Device pairing.
pub const PAIRING: &str = "operator.pairing";
/// Talk mode.
pub const TALK: &str = "operator.talk";

/// Whether the `granted` scopes satisfy `required`: `admin` satisfies everything,
/// `write` satisfies `read` and `talk`, anything else only itself.
pub fn satisfies(granted: &[String], required: &str) -> bool {
    granted.iter().any(|g| {
        g == required || g == ADMIN || (g == WRITE && (required == READ || required == TALK))
    })
}

/// The scope a known method needs; `None` for an unknown method.
pub fn required_scope(method: &str) -> Option<&'static str> {
    Some(match method {
        "health"
        | "status"
        | "system-presence"
        | "last-heartbeat"
        | "logs.tail"
        | "config.get"
        | "audit.tail"
        | "gateway.tunnels.status" => READ,
        "gateway.connections.list" | "gateway.tunnels.restart" => ADMIN,
        "device.pair.list"
        | "device.pair.approve"
        | "device.pair.reject"
        | "device.pair.remove" => PAIRING,
        #[cfg(feature = "fault-injection")]
        "debug.panic" | "debug.tunnel.panic" => READ,
        _ => return None,
    })
}

/// Every method this gateway answers, for `hello-ok.features.methods`.
pub fn known_methods() -> Vec<&'static str> {
    let mut v = vec![
        "health",
        "status",
        "system-presence",
        "last-heartbeat",
        "logs.tail",
        "config.get",
        "audit.tail",
        "gateway.connections.list",
        "gateway.tunnels.status",
        "gateway.tunnels.restart",
        "device.pair.list",
        "device.pair.approve",
        "device.pair.reject",
        "device.pair.remove",
    ];
    if cfg!(feature = "fault-injection") {
        v.extend(["debug.panic", "debug.tunnel.panic"]);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn table() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&[READ], READ, true),
            (&[], READ, false),
            (&[WRITE], READ, true),
            (&[WRITE], TALK, true),
            (&[WRITE], ADMIN, false),
            (&[ADMIN], PAIRING, true),
            (&[ADMIN], READ, true),
            (&[READ], WRITE, false),
            (&[PAIRING], READ, false),
            (&[READ, WRITE], PAIRING, false),
            (&["operator.talk.secrets"], TALK, false),
        ];
        for (granted, req, want) in cases {
            assert_eq!(satisfies(&s(granted), req), *want, "{granted:?} -> {req}");
        }
    }

    #[test]
    fn every_known_method_has_a_scope() {
        for m in known_methods() {
            assert!(required_scope(m).is_some(), "{m}");
        }
        assert_eq!(required_scope("no.such.method"), None);
        for m in [
            "device.pair.list",
            "device.pair.approve",
            "device.pair.reject",
            "device.pair.remove",
        ] {
            assert_eq!(required_scope(m), Some(PAIRING), "{m}");
        }
    }
}
