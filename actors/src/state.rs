//! Files in the state directory: atomic 0600 writes and the runtime token.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::distr::Alphanumeric;
use rand::Rng;

use crate::secret::Secret;

/// Length of a generated runtime token.
pub const RUNTIME_TOKEN_LEN: usize = 48;

/// Creates `dir` (and parents) with mode 0700 when missing.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        // Every component created here gets 0700, not just the leaf.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    Ok(())
}

/// Writes `data` to `path` atomically with mode 0600: a temp file in the same directory,
/// fsync, rename, fsync of the directory.
pub fn write_private_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    ensure_private_dir(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{:016x}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id(),
        rand::random::<u64>()
    ));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A random token of letters and digits (at least one of each).
pub fn generate_token(len: usize) -> String {
    loop {
        let t: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(len)
            .map(char::from)
            .collect();
        let letter = t.chars().any(|c| c.is_ascii_alphabetic());
        let digit = t.chars().any(|c| c.is_ascii_digit());
        if letter && digit {
            return t;
        }
    }
}

/// Path of the runtime token file.
pub fn runtime_token_path(state_dir: &Path) -> PathBuf {
    state_dir.join("gateway.token")
}

/// Returns the runtime token: the existing `<stateDir>/gateway.token` when it is private
/// (0600) and long enough, else a new one written there 0600. The bool says whether it
/// was generated now.
pub fn ensure_runtime_token(state_dir: &Path) -> io::Result<(Secret, PathBuf, bool)> {
    let path = runtime_token_path(state_dir);
    if let Ok(meta) = fs::metadata(&path) {
        let private = meta.permissions().mode() & 0o077 == 0;
        if private {
            let existing = fs::read_to_string(&path)?.trim().to_string();
            if existing.len() >= RUNTIME_TOKEN_LEN
                && existing.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Ok((Secret::new(existing), path, false));
            }
        }
    }
    let token = generate_token(RUNTIME_TOKEN_LEN);
    write_private_atomic(&path, format!("{token}\n").as_bytes())?;
    Ok((Secret::new(token), path, true))
}

/// The runtime token at `path` when the file is usable as [`ensure_runtime_token`] would
/// reuse it (private, at least [`RUNTIME_TOKEN_LEN`] letters and digits); `None` otherwise.
/// The Reloader re-reads it so that `openclaw token rotate` applies without a restart.
pub fn load_runtime_token(path: &Path) -> Option<Secret> {
    let meta = fs::metadata(path).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    let t = fs::read_to_string(path).ok()?;
    let t = t.trim();
    (t.len() >= RUNTIME_TOKEN_LEN && t.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| Secret::new(t))
}

/// Reads the runtime token if present (used by the local CLI).
pub fn read_runtime_token(state_dir: &Path) -> Option<Secret> {
    let t = fs::read_to_string(runtime_token_path(state_dir)).ok()?;
    let t = t.trim();
    (!t.is_empty()).then(|| Secret::new(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_private_reused_and_strong() {
        let d = std::env::temp_dir().join(format!("oc-state-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let (t1, p, fresh) = ensure_runtime_token(&d).unwrap();
        assert!(fresh);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(t1.expose().len() >= 48);
        let (t2, _, fresh2) = ensure_runtime_token(&d).unwrap();
        assert!(!fresh2);
        assert_eq!(t1, t2);
        // a world-readable token file is not trusted: a new one replaces it
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let (t3, _, fresh3) = ensure_runtime_token(&d).unwrap();
        assert!(fresh3);
        assert_ne!(t1, t3);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn generated_tokens_pass_alphanumeric_rule() {
        for _ in 0..50 {
            let t = generate_token(32);
            assert_eq!(t.len(), 32);
            assert!(crate::config::resolve::validate_secret(&t, 32, true).is_ok());
        }
    }
}
