//! Operator scopes and how they satisfy each other (PROTOCOL §2.2). The scope each method
//! needs is in the method table (`session::methods`).

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
}
