//! Secrets that never print: a masked string type and a constant-time comparison.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

/// Text shown in place of a secret by `Debug`, `Display` and `Serialize`.
pub const MASK: &str = "********";

/// A secret (token or password). `Debug`, `Display` and `Serialize` print [`MASK`];
/// read the value only with [`Secret::expose`] at the point of use.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

// === impl Secret ===

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Never log or print the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Blank values and the literal strings `"undefined"` / `"null"` count as unset,
    /// as in the real gateway.
    pub fn is_unset(&self) -> bool {
        let v = self.0.trim();
        v.is_empty() || v == "undefined" || v == "null"
    }

    /// Constant-time comparison with a presented value (see [`secret_eq`]).
    pub fn matches(&self, presented: &str) -> bool {
        secret_eq(self.0.as_bytes(), presented.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Compares two secrets in time that depends only on the longer length: both are
/// zero-padded to the same length and compared with `subtle`, and the lengths must match too
/// (the real gateway's `safeEqualSecret`).
pub fn secret_eq(expected: &[u8], presented: &[u8]) -> bool {
    let len = expected.len().max(presented.len());
    let mut a = vec![0u8; len];
    let mut b = vec![0u8; len];
    a[..expected.len()].copy_from_slice(expected);
    b[..presented.len()].copy_from_slice(presented);
    let same_bytes: bool = a.ct_eq(&b).into();
    let same_len: bool = (expected.len() as u64)
        .ct_eq(&(presented.len() as u64))
        .into();
    same_bytes & same_len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_everywhere() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s}"), MASK);
        assert_eq!(format!("{s:?}"), MASK);
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{MASK}\""));
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
    }

    #[test]
    fn comparison_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("abc", "abc\0", false),
            ("abc\0", "abc", false),
            ("", "", true),
            ("abc", "", false),
            ("", "abc", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(
                secret_eq(a.as_bytes(), b.as_bytes()),
                *want,
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn unset_values() {
        for v in ["", "  ", "undefined", "null"] {
            assert!(Secret::new(v).is_unset(), "{v:?}");
        }
        assert!(!Secret::new("x").is_unset());
    }
}
