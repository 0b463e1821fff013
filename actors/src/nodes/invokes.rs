//! The pending-invoke table of the node registry: every `node.invoke` relayed to a node and
//! not answered yet, bounded per node and per calling connection. Pure and generic over what
//! each entry carries (the reply port and timer in the actor, plain values in tests).

use std::collections::HashMap;

/// Most invokes pending on one node.
pub const MAX_PER_NODE: usize = 256;
/// Most invokes one operator connection may have pending.
pub const MAX_PER_CALLER: usize = 48;

/// One pending invoke.
#[derive(Debug)]
pub struct Entry<T> {
    /// Target node.
    pub node_id: String,
    /// The node connection it was sent on (a disconnect fails it).
    pub node_conn: String,
    /// Command.
    pub command: String,
    /// The operator connection that asked.
    pub caller: String,
    /// What the owner keeps with it.
    pub data: T,
}

/// Which bound an insert hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// [`Invokes::max_per_node`] pending on that node.
    Node(usize),
    /// [`Invokes::max_per_caller`] pending for that caller.
    Caller(usize),
}

/// What a result matched.
#[derive(Debug)]
pub enum Taken<T> {
    /// The pending invoke, removed.
    Found(Entry<T>),
    /// No pending invoke has this id (late, cancelled or never issued).
    Unknown,
    /// The id belongs to another node's invoke (left pending).
    OtherNode,
}

/// The table.
#[derive(Debug)]
pub struct Invokes<T> {
    by_id: HashMap<String, Entry<T>>,
    per_node: HashMap<String, usize>,
    per_caller: HashMap<String, usize>,
    /// Bound per node.
    pub max_per_node: usize,
    /// Bound per caller.
    pub max_per_caller: usize,
}

impl<T> Default for Invokes<T> {
    fn default() -> Self {
        Self {
            by_id: HashMap::new(),
            per_node: HashMap::new(),
            per_caller: HashMap::new(),
            max_per_node: MAX_PER_NODE,
            max_per_caller: MAX_PER_CALLER,
        }
    }
}

fn dec(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

// === impl Invokes ===

impl<T> Invokes<T> {
    /// Adds an invoke unless its node or caller is at its bound.
    pub fn insert(&mut self, id: String, e: Entry<T>) -> Result<(), (Full, Entry<T>)> {
        if self.per_node.get(&e.node_id).copied().unwrap_or(0) >= self.max_per_node {
            return Err((Full::Node(self.max_per_node), e));
        }
        if self.per_caller.get(&e.caller).copied().unwrap_or(0) >= self.max_per_caller {
            return Err((Full::Caller(self.max_per_caller), e));
        }
        *self.per_node.entry(e.node_id.clone()).or_default() += 1;
        *self.per_caller.entry(e.caller.clone()).or_default() += 1;
        self.by_id.insert(id, e);
        Ok(())
    }

    /// Removes the invoke `id` (a deadline fired, or its answer is in).
    pub fn take(&mut self, id: &str) -> Option<Entry<T>> {
        let e = self.by_id.remove(id)?;
        dec(&mut self.per_node, &e.node_id);
        dec(&mut self.per_caller, &e.caller);
        Some(e)
    }

    /// The pending invoke `id`, to update what it carries.
    pub fn by_id_mut(&mut self, id: &str) -> Option<&mut Entry<T>> {
        self.by_id.get_mut(id)
    }

    /// Removes the invoke `id` if it was sent to `node_id`.
    pub fn take_for(&mut self, id: &str, node_id: &str) -> Taken<T> {
        match self.by_id.get(id) {
            None => Taken::Unknown,
            Some(e) if e.node_id != node_id => Taken::OtherNode,
            Some(_) => self.take(id).map_or(Taken::Unknown, Taken::Found),
        }
    }

    /// Removes every invoke sent on the node connection `node_conn`.
    pub fn drain_conn(&mut self, node_conn: &str) -> Vec<(String, Entry<T>)> {
        let ids: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, e)| e.node_conn == node_conn)
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| self.take(&id).map(|e| (id, e)))
            .collect()
    }

    /// Invokes pending on `node_id`.
    pub fn on_node(&self, node_id: &str) -> usize {
        self.per_node.get(node_id).copied().unwrap_or(0)
    }

    /// All pending invokes.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(node: &str, conn: &str, caller: &str) -> Entry<u32> {
        Entry {
            node_id: node.into(),
            node_conn: conn.into(),
            command: "system.which".into(),
            caller: caller.into(),
            data: 0,
        }
    }

    #[test]
    fn bounds_per_node_and_per_caller() {
        let mut t = Invokes::<u32> {
            max_per_node: 3,
            max_per_caller: 2,
            ..Default::default()
        };
        assert!(t.insert("a".into(), e("n1", "c1", "op1")).is_ok());
        assert!(t.insert("b".into(), e("n1", "c1", "op1")).is_ok());
        let (full, _) = t.insert("c".into(), e("n1", "c1", "op1")).unwrap_err();
        assert_eq!(full, Full::Caller(2));
        assert!(t.insert("c".into(), e("n1", "c1", "op2")).is_ok());
        let (full, _) = t.insert("d".into(), e("n1", "c1", "op3")).unwrap_err();
        assert_eq!(full, Full::Node(3));
        assert!(t.insert("d".into(), e("n2", "c2", "op3")).is_ok());
        // Answers free the slots again.
        assert!(t.take("a").is_some());
        assert!(t.insert("e".into(), e("n1", "c1", "op1")).is_ok());
        assert_eq!((t.on_node("n1"), t.len()), (3, 4));
    }

    #[test]
    fn results_match_only_their_node_and_only_once() {
        let mut t = Invokes::<u32>::default();
        t.insert("a".into(), e("n1", "c1", "op")).unwrap();
        assert!(matches!(t.take_for("a", "n2"), Taken::OtherNode));
        assert!(matches!(t.take_for("a", "n1"), Taken::Found(_)));
        assert!(
            matches!(t.take_for("a", "n1"), Taken::Unknown),
            "late duplicate"
        );
        assert!(matches!(t.take_for("zzz", "n1"), Taken::Unknown));
        assert!(t.is_empty());
    }

    #[test]
    fn a_disconnect_drains_only_that_connection() {
        let mut t = Invokes::<u32>::default();
        t.insert("a".into(), e("n1", "old", "op")).unwrap();
        t.insert("b".into(), e("n1", "new", "op")).unwrap();
        t.insert("c".into(), e("n2", "x", "op")).unwrap();
        let mut gone: Vec<String> = t.drain_conn("old").into_iter().map(|(id, _)| id).collect();
        gone.sort();
        assert_eq!(gone, ["a"]);
        assert_eq!((t.len(), t.on_node("n1")), (2, 1));
    }
}
