//! Table tests of the Tailscale rules.

use super::*;
use serde_json::json;

#[test]
fn argv_of_every_command() {
    assert_eq!(version_argv(), ["version"]);
    assert_eq!(status_argv(), ["status", "--json"]);
    assert_eq!(serve_status_argv(), ["serve", "status", "--json"]);
    assert_eq!(
        adopt_argv(),
        ["serve", "--yes", "--https=443", "--set-path=/", "off"]
    );
    assert_eq!(
        claim_argv(Mode::Serve, 46455),
        ["serve", "--yes", "--bg=false", "46455"]
    );
    assert_eq!(
        claim_argv(Mode::Funnel, 1),
        ["funnel", "--yes", "--bg=false", "1"]
    );
    assert_eq!(
        whois_argv("100.64.0.7".parse().unwrap()),
        ["whois", "--json", "100.64.0.7"]
    );
}

#[test]
fn status_json_in_noisy_output() {
    let out = "Warning: client version differs\n{\"BackendState\":\"Starting\",\"Self\":{\"DNSName\":\"gw.tail1234.ts.net.\"}}\n";
    let v = json_in(out).unwrap();
    assert!(still_starting(&v));
    assert_eq!(self_name(&v).as_deref(), Some("gw.tail1234.ts.net"));
    assert!(!still_starting(&json!({"BackendState": "Running"})));
    assert!(!still_starting(&json!({"BackendState": "Stopped"})));
    assert_eq!(
        self_name(&json!({"Self": {"TailscaleIPs": ["100.1.2.3"]}})).as_deref(),
        Some("100.1.2.3")
    );
    assert_eq!(
        self_name(&json!({"TailscaleIPs": ["100.9.9.9"]})).as_deref(),
        Some("100.9.9.9")
    );
    assert!(json_in("no json here").is_none());
    assert!(daemon_unreachable(
        "dial unix /run/tailscale/tailscaled.sock: connect: connection refused"
    ));
    assert!(!daemon_unreachable("Access denied"));
}

#[test]
fn adoption_only_for_our_own_old_route() {
    let ours = json!({"TCP":{"443":{"HTTPS":true}},"Web":{"gw.tail1234.ts.net:443":{"Handlers":{"/":{"Proxy":"http://127.0.0.1:18789"}}}}});
    assert!(adoptable(&ours, 18789));
    assert!(!adoptable(&ours, 18790), "another port");
    let mut slash = ours.clone();
    slash["Web"]["gw.tail1234.ts.net:443"]["Handlers"]["/"]["Proxy"] =
        json!("http://localhost:18789/");
    assert!(adoptable(&slash, 18789));
    let mut two = ours.clone();
    two["Web"]["gw.tail1234.ts.net:443"]["Handlers"]["/x"] = json!({"Proxy": "http://127.0.0.1:1"});
    assert!(!adoptable(&two, 18789), "not a sole root handler");
    let mut no_https = ours.clone();
    no_https["TCP"]["443"]["HTTPS"] = json!(false);
    assert!(!adoptable(&no_https, 18789));
    assert!(!adoptable(&json!({}), 18789));
}

#[test]
fn whois_login_fallbacks() {
    let cases = [
        (
            json!({"UserProfile": {"LoginName": "alice@example.com", "Login": "x"}}),
            Some("alice@example.com"),
        ),
        (json!({"UserProfile": {"Login": "bob@x"}}), Some("bob@x")),
        (json!({"User": {"login": "carol@x"}}), Some("carol@x")),
        (json!({"LoginName": "dave@x"}), Some("dave@x")),
        (json!({"Node": {}}), None),
    ];
    for (v, want) in cases {
        assert_eq!(whois_login(&v).as_deref(), want, "{v}");
    }
}

#[test]
fn failures_are_classified_and_explained() {
    let p = classify("Access denied: serve config denied");
    assert!(matches!(p, Failure::Permission(_)));
    assert!(explain(Mode::Serve, "serve status --json", &p)
        .contains("sudo tailscale set --operator=$USER"));
    let c = classify("error: listener already exists for port 443");
    assert!(matches!(c, Failure::Conflict(_)));
    assert!(explain(Mode::Funnel, "funnel", &c).starts_with("tailscale funnel: HTTPS port 443"));
    assert!(explain(Mode::Serve, "version", &Failure::Missing).contains("not found on PATH"));
    assert!(matches!(classify("boom"), Failure::Other(_)));
}

#[test]
fn whois_cache_ttls() {
    let mut c = WhoisCache::default();
    let t0 = Instant::now();
    let (a, b): (IpAddr, IpAddr) = ("100.64.0.7".parse().unwrap(), "100.64.0.9".parse().unwrap());
    c.put(a, Some("alice".into()), t0);
    c.put(b, None, t0);
    assert_eq!(
        c.get(a, t0 + Duration::from_secs(59)),
        Some(Some("alice".into()))
    );
    assert_eq!(c.get(a, t0 + Duration::from_secs(60)), None);
    assert_eq!(c.get(b, t0 + Duration::from_secs(4)), Some(None));
    assert_eq!(c.get(b, t0 + Duration::from_secs(5)), None);
}

#[test]
fn whois_cache_is_bounded() {
    let mut c = WhoisCache::default();
    let t0 = Instant::now();
    for i in 0..(WHOIS_MAX as u32 + 100) {
        let ip = IpAddr::from(std::net::Ipv4Addr::from(0x6440_0000 + i));
        c.put(ip, Some("u".into()), t0 + Duration::from_millis(i as u64));
    }
    assert_eq!(c.len(), WHOIS_MAX);
}

#[test]
fn managed_listener_ingress_rules() {
    let h = |pairs: &'static [(&'static str, &'static str)]| {
        move |n: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        }
    };
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    const FULL: &[(&str, &str)] = &[
        ("x-forwarded-for", "100.64.0.7"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "gw.tail1234.ts.net"),
        ("tailscale-user-login", "alice@example.com"),
        ("tailscale-user-name", "Alice Example"),
    ];
    let ok = ingress(Mode::Serve, lo, &h(FULL)).unwrap();
    assert_eq!(ok.client, "100.64.0.7".parse::<IpAddr>().unwrap());
    assert_eq!(ok.login.as_deref(), Some("alice@example.com"));
    assert!(!ok.funnel);
    const NO_HOST: &[(&str, &str)] = &[
        ("x-forwarded-for", "100.64.0.7"),
        ("x-forwarded-proto", "https"),
    ];
    assert!(ingress(Mode::Serve, lo, &h(NO_HOST)).is_err());
    const FUNNEL: &[(&str, &str)] = &[
        ("x-forwarded-for", "203.0.113.5"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "gw.tail1234.ts.net"),
        ("tailscale-funnel-request", "?1"),
    ];
    assert!(
        ingress(Mode::Serve, lo, &h(FUNNEL)).is_err(),
        "funnel request in serve mode"
    );
    assert!(ingress(Mode::Funnel, lo, &h(FUNNEL)).unwrap().funnel);
    assert!(
        ingress(Mode::Serve, "10.0.0.1".parse().unwrap(), &h(FULL)).is_err(),
        "not loopback"
    );
    const LOOPBACK_CLIENT: &[(&str, &str)] = &[
        ("x-forwarded-for", "127.0.0.1"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "h"),
    ];
    assert!(ingress(Mode::Serve, lo, &h(LOOPBACK_CLIENT)).is_err());
    const CHAIN: &[(&str, &str)] = &[
        ("x-forwarded-for", "1.2.3.4, 100.64.0.8, 127.0.0.1"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "h"),
    ];
    assert_eq!(
        ingress(Mode::Serve, lo, &h(CHAIN)).unwrap().client,
        "100.64.0.8".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn allowed_users_match_case_insensitively_and_empty_allows_all() {
    let allowed = vec!["Alice@Example.com".to_string()];
    assert!(user_allowed(&allowed, "alice@example.com"));
    assert!(!user_allowed(&allowed, "mallory@example.com"));
    assert!(user_allowed(&[], "anyone@x"));
}
