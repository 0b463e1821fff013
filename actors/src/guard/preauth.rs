//! The cap on unauthenticated connections per client address (PROTOCOL §1: 32 by default,
//! `OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP`). A permit is taken at the upgrade and released
//! at `hello-ok` or when the connection ends. The table holds only addresses with a
//! connection in the handshake, so its size is bounded by open sockets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::shared::lock;

/// Pre-auth connection counts by client address.
#[derive(Debug, Default)]
pub struct PreauthTable {
    counts: Mutex<HashMap<IpAddr, u32>>,
}

/// One unauthenticated connection; released on drop.
#[derive(Debug)]
pub struct PreauthPermit {
    table: Arc<PreauthTable>,
    ip: IpAddr,
}

// === impl PreauthTable ===

impl PreauthTable {
    /// Takes a permit for `ip` unless it already has `max`.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr, max: u32) -> Option<PreauthPermit> {
        let mut m = lock(&self.counts);
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            if *n == 0 {
                m.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(PreauthPermit {
            table: self.clone(),
            ip,
        })
    }

    /// Pre-auth connections from `ip` now.
    pub fn count(&self, ip: IpAddr) -> u32 {
        lock(&self.counts).get(&ip).copied().unwrap_or(0)
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        lock(&self.counts).len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for PreauthPermit {
    fn drop(&mut self) {
        let mut m = lock(&self.table.counts);
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_per_address_and_release() {
        let t = Arc::new(PreauthTable::default());
        let a: IpAddr = "198.18.0.2".parse().unwrap();
        let b: IpAddr = "198.18.0.3".parse().unwrap();
        let held: Vec<_> = (0..32).map(|_| t.try_acquire(a, 32).unwrap()).collect();
        assert!(t.try_acquire(a, 32).is_none());
        assert!(t.try_acquire(b, 32).is_some(), "other addresses unaffected");
        assert_eq!(t.count(a), 32);
        drop(held);
        assert_eq!(t.count(a), 0);
        assert!(t.is_empty(), "released addresses leave the table");
        assert!(t.try_acquire(a, 0).is_none(), "max 0 refuses");
        assert!(t.is_empty());
    }
}
