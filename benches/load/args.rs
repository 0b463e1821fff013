//! A tiny `<mode> --key value ...` parser (no clap: keeps the bench self-contained).

use std::collections::HashMap;
use std::str::FromStr;

/// Flags without a value (`--bench` is appended by `cargo bench`).
const BOOL_FLAGS: &[&str] = &["--bench", "--json", "--help", "-h", "--tls"];

/// Parsed command line.
pub struct Args {
    /// The first positional word.
    pub mode: Option<String>,
    opts: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    /// Parses the words after the program name.
    pub fn parse(words: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut a = Args {
            mode: None,
            opts: HashMap::new(),
            flags: Vec::new(),
        };
        let mut it = words.peekable();
        while let Some(w) = it.next() {
            if BOOL_FLAGS.contains(&w.as_str()) {
                a.flags.push(w);
            } else if w.starts_with('-') {
                let v = it.next().ok_or_else(|| format!("{w} needs a value"))?;
                a.opts.insert(w, v);
            } else if a.mode.is_none() {
                a.mode = Some(w);
            } else {
                return Err(format!("unexpected argument {w:?}"));
            }
        }
        Ok(a)
    }

    /// A boolean flag.
    pub fn flag(&self, k: &str) -> bool {
        self.flags.iter().any(|f| f == k)
    }

    /// A string option.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.opts.get(k).map(String::as_str)
    }

    /// A parsed option with a default.
    pub fn num<T: FromStr>(&self, k: &str, default: T) -> Result<T, String> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("{k}: bad value {v:?}")),
        }
    }

    /// A comma-separated list of numbers with a default.
    pub fn list(&self, k: &str, default: &[usize]) -> Result<Vec<usize>, String> {
        match self.get(k) {
            None => Ok(default.to_vec()),
            Some(v) => v
                .split(',')
                .map(|x| {
                    x.trim()
                        .parse()
                        .map_err(|_| format!("{k}: bad value {x:?}"))
                })
                .collect(),
        }
    }

    /// Names of options that no mode reads (typos).
    pub fn unknown(&self, known: &[&str]) -> Vec<String> {
        self.opts
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

/// Whether a `ws://` URL points at loopback.
pub fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
    else {
        return false;
    };
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}
