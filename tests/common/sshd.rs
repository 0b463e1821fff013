//! A throwaway `sshd` on 127.0.0.1:<free port> as the current user: generated host and
//! client keys, authorized_keys and known_hosts in a temp dir, no system config touched
//! (only `/run/sshd`, sshd's privilege-separation dir, is created if missing).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{kill, patience, temp_dir};

/// The sshd binary.
pub const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd.
pub struct Sshd {
    pub dir: PathBuf,
    pub port: u16,
    pub child: Option<Child>,
    pub client_key: PathBuf,
    pub known_hosts: PathBuf,
    pub user: String,
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen failed");
}

/// Whether sshd and ssh are installed (`.ci/run` installs them).
pub fn available() -> bool {
    availability().is_ok()
}

/// Whether sshd, ssh and ssh-keygen are installed; `Err` says which is missing. Tests gate
/// on it with [`super::require`]`("sshd", sshd::availability())`.
pub fn availability() -> Result<(), String> {
    if !Path::new(SSHD).exists() {
        return Err(format!("{SSHD} not found"));
    }
    for tool in ["ssh", "ssh-keygen"] {
        // `ssh -V` exits 0; `ssh-keygen -?` exits non-zero: only whether it runs matters.
        let flag = if tool == "ssh" { "-V" } else { "-?" };
        Command::new(tool)
            .arg(flag)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run `{tool}`: {e}"))?;
    }
    Ok(())
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// === impl Sshd ===

impl Sshd {
    /// Generates keys and starts sshd.
    pub fn start() -> Sshd {
        let dir = temp_dir("sshd");
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        let port = free_port();
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        let mut parts = host_pub.split_whitespace();
        let line = format!(
            "[127.0.0.1]:{port} {} {}\n",
            parts.next().unwrap(),
            parts.next().unwrap()
        );
        std::fs::write(dir.join("known_hosts"), line).unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let mut s = Sshd {
            client_key: dir.join("client_key"),
            known_hosts: dir.join("known_hosts"),
            dir,
            port,
            child: None,
            user,
        };
        s.restart();
        s
    }

    /// (Re)starts sshd on the same port with the same keys.
    pub fn restart(&mut self) {
        let d = &self.dir;
        let cfg = format!(
            "Port {}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\nStrictModes no\n\
             UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nGatewayPorts no\nLogLevel ERROR\n",
            self.port,
            d.join("host_key").display(),
            d.join("authorized_keys").display(),
            d.join("sshd.pid").display()
        );
        std::fs::write(d.join("sshd_config"), cfg).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + patience();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `user@127.0.0.1:port`.
    pub fn target(&self) -> String {
        format!("{}@127.0.0.1:{}", self.user, self.port)
    }

    /// The per-connection sshd processes (descendants of the listener).
    pub fn session_pids(&self) -> Vec<u32> {
        match &self.child {
            Some(c) => descendants(c.id()),
            None => Vec::new(),
        }
    }

    /// Stops sshd and every connection it serves.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let kids = descendants(c.id());
            let _ = c.kill();
            let _ = c.wait();
            for k in kids {
                kill(k, libc::SIGCONT);
                kill(k, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parent pid of `pid` from /proc.
pub fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// All descendants of `root`.
pub fn descendants(root: u32) -> Vec<u32> {
    let all: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &c in &all {
            if ppid(c) == Some(p) && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// Pids whose command line mentions `needle` (to prove no ssh is left behind).
pub fn pids_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                == Some("Z");
            !zombie && String::from_utf8_lossy(&raw).contains(needle)
        })
        .collect()
}
