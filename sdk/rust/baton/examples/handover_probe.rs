//! A daemon that serves nothing, for the Rust SDK's handover tests
//! (tests/sdk/handover_test.cc): it hands over socket pairs and a state in
//! its drain and seal hooks and records what it receives in begin and
//! resume. The Go and Python SDKs have the same probe, trace for trace.
//!
//!     handover_probe DIR
//!
//! Every generation appends lines "<pid> <what>" to DIR/trace. DIR/handover
//! "N S", if present: drain makes N connected socket pairs, writes
//! "ping-<pid>-I" into one end, reads it from the other (bytes read but not
//! processed) and hands that end over as connection "conn-I" with them as
//! metadata, and the first end as file "peer-I"; seal sets a state of S
//! bytes starting "state-<pid>". Begin and resume take what was handed
//! over, write "pong-<pid>-I" into each peer and trace what its connection
//! reads, then close them. DIR/fail-begin makes begin fail with its
//! contents. Every generation accepts a handover (`accept_handover`)
//! unless DIR/no-accept exists when it starts; drain traces whether the
//! successor accepts, and when it does not, that a hand-over is refused.
//! SIGTERM asks for exit 0.
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::io::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use baton::{Code, Daemon, Error, HandoverKind, Hooks, Options, SealReport, SealedState};

fn dir() -> String {
    std::env::args().nth(1).unwrap_or_default()
}

fn trace(line: &str) {
    let line = format!("{} {}\n", std::process::id(), line);
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(format!("{}/trace", dir())) {
        let _ = f.write_all(line.as_bytes()); // one write: generations append concurrently
    }
}

/// DIR/name without its trailing newlines, if it exists.
fn knob(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("{}/{}", dir(), name)).ok().map(|s| s.trim_end_matches('\n').to_string())
}

fn code_of<T, E: Into<Error>>(r: Result<T, E>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.into().code().as_raw(),
    }
}

struct Probe {
    daemon: Weak<Daemon>,
}

impl Probe {
    fn daemon(&self) -> Arc<Daemon> {
        self.daemon.upgrade().expect("the daemon outlives its hooks")
    }

    fn hand_over_pairs(&self, n: usize) -> Result<(), Error> {
        let d = self.daemon();
        let accepts = d.successor_accepts_handover();
        trace(&format!("successor_accepts={}", accepts as i32));
        if !accepts {
            // Refused (FailedPrecondition), the stream given back open.
            let (peer, conn) = UnixStream::pair()?;
            let (code, open) = match d.hand_over(HandoverKind::Connection, "conn-0", conn, &[]) {
                Ok(()) => return Err(Error::new(Code::Internal, "handed over to a successor that does not accept")),
                Err(e) => {
                    let code = e.error().code().as_raw();
                    let mut conn = File::from(e.into_fd());
                    (code, conn.write_all(b"x").is_ok())
                }
            };
            drop(peer);
            trace(&format!("refused_unaccepted={} open={}", code, open as i32));
            return Ok(());
        }
        let pid = std::process::id();
        for i in 0..n {
            let (mut peer, mut conn) = UnixStream::pair()?;
            let ping = format!("ping-{}-{}", pid, i);
            peer.write_all(ping.as_bytes())?;
            let mut unread = vec![0u8; ping.len()];
            conn.read_exact(&mut unread)?;
            // The stream moves into the library; nothing here can use it any more.
            d.hand_over(HandoverKind::Connection, &format!("conn-{}", i), conn, &unread)?;
            d.hand_over(HandoverKind::File, &format!("peer-{}", i), peer, &[])?;
        }
        // A pipe is no connection, and a name goes once: refused, the fd given back.
        let mut fds = [0; 2];
        // SAFETY: an array of two ints to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: two fresh descriptors, owned from here on.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let (bad, r) = match d.hand_over(HandoverKind::Connection, "pipe", r, &[]) {
            Ok(()) => return Err(Error::new(Code::Internal, "a pipe was taken as a connection")),
            Err(e) => (e.error().code().as_raw(), e.into_fd()),
        };
        let (twice, r) = match d.hand_over(HandoverKind::File, "peer-0", r, &[]) {
            Ok(()) => return Err(Error::new(Code::Internal, "a name was taken twice")),
            Err(e) => (e.error().code().as_raw(), e.into_fd()),
        };
        let (mut r, mut w) = (File::from(r), File::from(w));
        let mut buf = [0u8; 10];
        let open = w.write_all(b"still open").is_ok() && r.read_exact(&mut buf).is_ok();
        trace(&format!("refused pipe={} twice={} open={}", bad, twice, open as i32));
        Ok(())
    }

    /// Traces what was handed over, checks that each connection works, then
    /// closes everything (the values drop).
    fn take_all(&self, hook: &str) {
        let d = self.daemon();
        let handed = match d.take_handed_over() {
            Ok(h) => h,
            Err(e) => {
                trace(&format!("{} take failed {} {}", hook, e.code().as_raw(), e));
                Vec::new()
            }
        };
        let mut by_name: BTreeMap<String, baton::Handed> = handed.into_iter().map(|h| (h.name.clone(), h)).collect();
        let mut peers = BTreeMap::new();
        for name in by_name.keys().filter(|n| n.starts_with("peer-")).cloned().collect::<Vec<_>>() {
            let h = by_name.remove(&name).unwrap();
            peers.insert(name, (h.kind, h.metadata, File::from(h.fd)));
        }
        for (name, h) in by_name {
            let read = if h.kind == HandoverKind::Connection {
                let i = name.trim_start_matches("conn-");
                match peers.get_mut(&format!("peer-{}", i)) {
                    Some((_, _, peer)) => ping_pong(UnixStream::from(h.fd), peer, i),
                    None => "no-peer".to_string(),
                }
            } else {
                String::new()
            };
            trace(&format!(
                "{} handed {} kind={} meta={} read={}",
                hook,
                name,
                kind_number(h.kind),
                String::from_utf8_lossy(&h.metadata),
                read
            ));
        }
        for (name, (kind, metadata, _)) in &peers {
            trace(&format!(
                "{} handed {} kind={} meta={} read=",
                hook,
                name,
                kind_number(*kind),
                String::from_utf8_lossy(metadata)
            ));
        }
        match d.take_handover_state() {
            Err(e) => trace(&format!("{} state failed {} {}", hook, e.code().as_raw(), e)),
            Ok(None) => trace(&format!("{} state none", hook)),
            Ok(Some(s)) => trace(&format!(
                "{} state len={} head={}",
                hook,
                s.len(),
                String::from_utf8_lossy(&s[..s.len().min(32)])
            )),
        }
    }
}

fn kind_number(k: HandoverKind) -> i32 {
    match k {
        HandoverKind::Connection => 0,
        HandoverKind::File => 1,
    }
}

/// Writes "pong-<pid>-I" into `peer` and returns what `conn` reads.
fn ping_pong(mut conn: UnixStream, peer: &mut File, i: &str) -> String {
    let pong = format!("pong-{}-{}", std::process::id(), i);
    if peer.write_all(pong.as_bytes()).is_err() {
        return "write-failed".into();
    }
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
    let mut got = vec![0u8; pong.len()];
    match conn.read_exact(&mut got) {
        Ok(()) => String::from_utf8_lossy(&got).into_owned(),
        Err(_) => "read-failed".into(),
    }
}

impl Hooks for Probe {
    fn warm(&self) -> Result<(), Error> {
        trace("warm");
        Ok(())
    }

    fn drain(&self, _: Option<Instant>) -> Result<(), Error> {
        trace("drain");
        let n = match knob("handover") {
            Some(spec) => spec.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0),
            None => return Ok(()),
        };
        self.hand_over_pairs(n).map_err(|e| {
            trace(&format!("drain failed {} {}", e.code().as_raw(), e));
            e
        })
    }

    fn seal(&self) -> Result<SealReport, Error> {
        trace("seal");
        if let Some(spec) = knob("handover") {
            let size: usize = spec.split_whitespace().last().and_then(|s| s.parse().ok()).unwrap_or(0);
            let mut state = vec![b'x'; size];
            let head = format!("state-{}", std::process::id());
            let n = head.len().min(size);
            state[..n].copy_from_slice(&head.as_bytes()[..n]);
            if !self.daemon().successor_accepts_handover() {
                // Refused (FailedPrecondition): the seal goes on without it.
                trace(&format!("state_unaccepted={}", code_of(self.daemon().set_handover_state(&state))));
            } else if let Err(e) = self.daemon().set_handover_state(&state) {
                trace(&format!("set state failed {} {}", e.code().as_raw(), e));
                return Err(e);
            }
        }
        Ok(SealReport { revision: 1, fingerprint: "probe".into() })
    }

    fn begin(&self, _: &SealedState) -> Result<(), Error> {
        trace("begin");
        self.take_all("begin");
        match knob("fail-begin") {
            Some(msg) => Err(Error::new(Code::Internal, msg)),
            None => Ok(()),
        }
    }

    fn resume(&self, _: bool) -> Result<(), Error> {
        trace("resume");
        self.take_all("resume");
        Ok(())
    }

    fn retire(&self) {
        trace("retire");
    }
}

fn main() {
    if std::env::args().len() != 2 {
        eprintln!("usage: handover_probe DIR");
        std::process::exit(2);
    }
    // SAFETY: plain libc calls on a local set, before any thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let options = Options { build_id: "rust-handover-probe".into(), ..Options::default() };
    let daemon = Arc::new(Daemon::new(options).unwrap_or_else(|e| {
        eprintln!("handover_probe: {}", e);
        std::process::exit(2);
    }));
    if knob("no-accept").is_none() {
        if let Err(e) = daemon.accept_handover() {
            eprintln!("handover_probe: {}", e);
            std::process::exit(2);
        }
    }
    let weak = Arc::downgrade(&daemon);
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: a blocked set and an int to fill.
        while unsafe { libc::sigwait(&set, &mut sig) } != 0 {}
        if let Some(d) = weak.upgrade() {
            let _ = d.request_exit(0);
        }
    });
    if let Err(e) = daemon.start(Probe { daemon: Arc::downgrade(&daemon) }) {
        trace(&format!("start failed {} {}", e.code().as_raw(), e));
        std::process::exit(1);
    }
    // Outside drain and seal nothing may be handed over.
    let outside = daemon.hand_over(HandoverKind::File, "x", File::open("/dev/null").unwrap(), &[]);
    trace(&format!("outside={}", code_of(outside)));
    // Accepting is said before the Hello, or not at all.
    trace(&format!("accept_after_start={}", code_of(daemon.accept_handover())));
    trace("serving");
    let code = daemon.wait().unwrap_or(1);
    trace(&format!("exit {}", code));
    drop(daemon);
    std::process::exit(code);
}
