//! Table-driven tests of the pending-request table: TTL from the last retry, same ask same
//! id, changed ask new id, the bound, and the approval rule.

use super::*;

const T0: i64 = 1_800_000_000_000;

fn ask(device: &str, id: &str, role: &str, scopes: &[&str]) -> PendingRequest {
    PendingRequest {
        request_id: id.into(),
        device_id: device.into(),
        public_key: format!("key-of-{device}"),
        display_name: None,
        platform: "linux".into(),
        device_family: Some("Linux".into()),
        client_id: "node-host".into(),
        client_mode: "node".into(),
        role: role.into(),
        roles: vec![role.into()],
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        remote_ip: "203.0.113.7".into(),
        silent: false,
        is_repair: false,
        ts: 0,
    }
}

fn op(device: &str, id: &str, scopes: &[&str]) -> PendingRequest {
    ask(device, id, "operator", scopes)
}

#[test]
fn retries_and_changes() {
    // (attempt, at ms after T0, expected request id, expected outcome)
    let r = &["operator.read"];
    let cases: Vec<(PendingRequest, i64, &str, Upsert)> = vec![
        (op("d1", "id-1", r), 0, "id-1", Upsert::Created),
        // same device, same ask: same id, even though a fresh id was offered
        (op("d1", "id-2", r), 1_000, "id-1", Upsert::Refreshed),
        // scopes in another order are the same set
        (
            op("d1", "id-3", &["operator.write", "operator.read"]),
            2_000,
            "id-3",
            Upsert::Created,
        ),
        (
            op("d1", "id-4", &["operator.read", "operator.write"]),
            3_000,
            "id-3",
            Upsert::Refreshed,
        ),
        // changed role: new id
        (
            ask("d1", "id-5", "node", &["operator.read", "operator.write"]),
            4_000,
            "id-5",
            Upsert::Created,
        ),
        // changed key: new id
        (
            PendingRequest {
                public_key: "another-key".into(),
                ..ask("d1", "id-6", "node", &["operator.read", "operator.write"])
            },
            5_000,
            "id-6",
            Upsert::Created,
        ),
        // a retry 1 ms before the TTL (counted from the last retry) keeps the id
        (
            PendingRequest {
                public_key: "another-key".into(),
                ..ask("d1", "id-7", "node", &["operator.read", "operator.write"])
            },
            5_000 + DEVICE_PAIRING_PENDING_TTL_MS - 1,
            "id-6",
            Upsert::Refreshed,
        ),
        // a retry a full TTL after the last one starts over
        (
            PendingRequest {
                public_key: "another-key".into(),
                ..ask("d1", "id-8", "node", &["operator.read", "operator.write"])
            },
            5_000 + 2 * DEVICE_PAIRING_PENDING_TTL_MS - 1,
            "id-8",
            Upsert::Created,
        ),
    ];
    let mut t = PendingRequests::default();
    for (i, (a, at, want_id, want)) in cases.into_iter().enumerate() {
        let (got, outcome) = t.upsert(a, T0 + at);
        assert_eq!(
            (got.request_id.as_str(), outcome),
            (want_id, want),
            "case {i}"
        );
        assert_eq!(got.ts, T0 + at, "case {i}: ts is the last retry");
        assert_eq!(t.len(), 1, "case {i}: one request per device");
    }
}

#[test]
fn expiry_with_injected_now() {
    // (ms after the last retry, still listed, still approvable)
    let cases = [
        (0, true),
        (DEVICE_PAIRING_PENDING_TTL_MS - 1, true),
        (DEVICE_PAIRING_PENDING_TTL_MS, false),
        (DEVICE_PAIRING_PENDING_TTL_MS * 10, false),
    ];
    for (after, live) in cases {
        let mut t = PendingRequests::default();
        t.upsert(op("d1", "id-1", &[]), T0);
        let listed = t.list(T0 + after);
        assert_eq!(listed.len(), usize::from(live), "list at +{after}");
        let mut t = PendingRequests::default();
        t.upsert(op("d1", "id-1", &[]), T0);
        assert_eq!(
            t.take("id-1", T0 + after).is_some(),
            live,
            "take at +{after}"
        );
        assert!(t.is_empty(), "take or prune leaves nothing at +{after}");
    }
}

#[test]
fn take_list_and_remove() {
    let mut t = PendingRequests::default();
    t.upsert(op("d2", "id-2", &[]), T0 + 10);
    t.upsert(op("d1", "id-1", &[]), T0);
    let ids: Vec<_> = t.list(T0 + 20).into_iter().map(|r| r.request_id).collect();
    assert_eq!(ids, ["id-1", "id-2"], "oldest first");
    assert_eq!(t.take("nope", T0 + 20), None);
    assert_eq!(
        t.take("id-2", T0 + 20).map(|r| r.device_id),
        Some("d2".into())
    );
    assert_eq!(t.take("id-2", T0 + 20), None, "taken once");
    t.remove_device("d1");
    assert!(t.is_empty());
}

#[test]
fn the_table_is_bounded_and_evicts_the_stalest() {
    let mut t = PendingRequests::default();
    for i in 0..MAX_PENDING {
        t.upsert(op(&format!("d{i}"), &format!("id-{i}"), &[]), T0 + i as i64);
    }
    assert_eq!(t.len(), MAX_PENDING);
    // d0 retries: now the freshest, so d1 is the stalest
    t.upsert(op("d0", "other", &[]), T0 + 5_000);
    // a flood of fresh keys, all in the same millisecond
    for i in 0..3 {
        let (r, o) = t.upsert(op(&format!("new{i}"), &format!("new-{i}"), &[]), T0 + 6_000);
        assert_eq!(
            (r.request_id.as_str(), o),
            (format!("new-{i}").as_str(), Upsert::Created)
        );
    }
    assert_eq!(t.len(), MAX_PENDING);
    let ids: Vec<String> = t
        .list(T0 + 6_000)
        .into_iter()
        .map(|r| r.device_id)
        .collect();
    for gone in ["d1", "d2", "d3"] {
        assert!(!ids.iter().any(|d| d == gone), "{gone} evicted");
    }
    for kept in ["d0", "d4", "new0", "new1", "new2"] {
        assert!(ids.iter().any(|d| d == kept), "{kept} kept");
    }
    // the newest entry is never the one evicted, even when all share a timestamp
    let mut t = PendingRequests::default();
    for i in 0..=MAX_PENDING {
        t.upsert(op(&format!("d{i}"), &format!("id-{i}"), &[]), T0);
    }
    assert_eq!(t.len(), MAX_PENDING);
    assert!(t.take(&format!("id-{MAX_PENDING}"), T0).is_some());
}

#[test]
fn approval_rule() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let cases: &[(&str, &[&str], bool)] = &[
        ("operator", &["operator.pairing"], true),
        ("node", &["operator.pairing"], false),
        ("node", &["operator.pairing", "operator.admin"], true),
        ("node", &["operator.admin"], true),
        ("node", &["operator.write"], false),
    ];
    for (role, scopes, want) in cases {
        assert_eq!(
            approval_allowed(role, &s(scopes)),
            *want,
            "{role} {scopes:?}"
        );
    }
}

#[test]
fn approval_copies_the_request_and_never_serializes_tokens() {
    let r = ask("d1", "id-1", "node", &[]);
    let d = r.approve("owner", T0);
    assert_eq!(
        (
            d.device_id.as_str(),
            d.role.as_str(),
            d.approved_via.as_str()
        ),
        ("d1", "node", "owner")
    );
    assert_eq!((d.created_at_ms, d.approved_at_ms), (T0, T0));
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["roles"], serde_json::json!(["node"]));
    assert_eq!(v["remoteIp"], "203.0.113.7");
    assert!(v.get("tokens").is_none());
    let p = serde_json::to_value(&r).unwrap();
    assert_eq!(p["requestId"], "id-1");
    assert_eq!(
        (p["silent"].clone(), p["isRepair"].clone()),
        (false.into(), false.into())
    );
}
