//! SHA-256 certificate fingerprints: computing them, printing them (`sha256:<hex>`), and
//! reading what a user pastes (64 hex digits, 32 colon-separated pairs, an optional
//! `sha256:` prefix, any case — the real client's rules).

use sha2::{Digest, Sha256};

/// Why a pasted fingerprint was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid TLS fingerprint {shown:?}: expected a SHA-256 certificate fingerprint (64 hex digits, AA:BB:… pairs, or sha256:<hex>)")]
pub struct BadFingerprint {
    /// The input, shortened for the message.
    pub shown: String,
}

/// Lowercase hex SHA-256 of a certificate's DER bytes.
pub fn sha256_hex(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `sha256:<hex>` for display.
pub fn display(hex: &str) -> String {
    format!("sha256:{hex}")
}

/// Reads a pasted fingerprint into lowercase hex without colons.
pub fn normalize(input: &str) -> Result<String, BadFingerprint> {
    let bad = || BadFingerprint {
        shown: input.chars().take(80).collect(),
    };
    let t = input.trim();
    let t = match t.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("sha256:") => &t[7..],
        _ => t,
    };
    let hex: String = if t.contains(':') {
        let pairs: Vec<&str> = t.split(':').collect();
        if pairs.len() != 32 || pairs.iter().any(|p| p.len() != 2) {
            return Err(bad());
        }
        pairs.concat()
    } else {
        t.to_string()
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(hex.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let hex = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        let cases: &[(&str, Option<&str>)] = &[
            (&hex, Some(&hex)),
            (&hex.to_uppercase(), Some(&hex)),
            (&colons, Some(&hex)),
            (&format!("sha256:{hex}"), Some(&hex)),
            (&format!("SHA256:{colons}"), Some(&hex)),
            (&format!("  sha256:{hex}\n"), Some(&hex)),
            ("abc", None),
            ("", None),
            (&"ab".repeat(31), None),
            (&"zz".repeat(32), None),
            (&vec!["ABC"; 32].join(":"), None),
            (&format!("sha1:{hex}"), None),
            (&format!("{hex}00"), None),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).ok().as_deref(), *want, "{input:?}");
        }
        let e = normalize("abc").unwrap_err().to_string();
        assert!(e.contains("SHA-256") && e.contains("\"abc\""), "{e}");
    }

    #[test]
    fn sha256_of_der() {
        // SHA-256 of the empty input.
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(display("ab").starts_with("sha256:"));
    }
}
