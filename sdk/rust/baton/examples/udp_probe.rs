//! A daemon that echoes datagrams, for the Rust SDK's UDP listener tests
//! (tests/sdk/udp_test.cc): it serves its `udp://` listener through
//! `Daemon::udp_socket`. The Go SDK has the same probe, line for line.
//!
//!     udp_probe
//!
//! It needs two listeners, "udp" (udp://) and "http" (tcp://). Before start
//! it asks for each with the other kind's helper and writes to stderr
//!
//!     udp-probe <pid> stream on udp: code=<code> <error>
//!     udp-probe <pid> datagram on http: code=<code> <error>
//!
//! Then, from start (cold start) or begin (successor) until drain or
//! retire, and again after resume, it answers every datagram on "udp" to
//! its sender with "pid=<pid> " and the datagram, and every HTTP request on
//! "http" with 200 "pid=<pid>". Drain drops both (duplicates: the sockets
//! stay open for the successor) and writes "udp-probe <pid> drained".
//! Standalone it exits 2; SIGTERM asks for exit 0.
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use baton::{Daemon, Error, Hooks, Options, Role, SealReport, SealedState};

/// One line on stderr, in one write (other generations and the library
/// write there too).
fn say(line: &str) {
    let line = format!("udp-probe {} {}\n", std::process::id(), line);
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn code_and_text<T>(r: Result<T, Error>) -> String {
    match r {
        Ok(_) => "code=0 ok".to_string(),
        Err(e) => format!("code={} {}", e.code().as_raw(), e),
    }
}

/// Whether `fd` is readable within 50 ms.
fn readable(fd: RawFd) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd.
    unsafe { libc::poll(&mut p, 1, 50) == 1 && (p.revents & libc::POLLIN) != 0 }
}

/// Answers each datagram until `stop`; a datagram read is always answered.
/// The socket is non-blocking (shared with the other generation, which may
/// have made it so anyway): a datagram announced by poll may be gone.
fn echo(udp: UdpSocket, stop: Arc<AtomicBool>) {
    let prefix = format!("pid={} ", std::process::id());
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::SeqCst) {
        if !readable(udp.as_raw_fd()) {
            continue;
        }
        if let Ok((n, from)) = udp.recv_from(&mut buf) {
            let mut out = prefix.clone().into_bytes();
            out.extend_from_slice(&buf[..n]);
            let _ = udp.send_to(&out, from);
        }
    }
}

/// Answers each HTTP request with 200 "pid=<pid>" until `stop`.
fn serve_http(http: TcpListener, stop: Arc<AtomicBool>) {
    let body = format!("pid={}", std::process::id());
    let response =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}", body.len(), body);
    while !stop.load(Ordering::SeqCst) {
        if !readable(http.as_raw_fd()) {
            continue;
        }
        let mut conn = match http.accept() {
            Ok((conn, _)) => conn,
            Err(_) => continue,
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(n) if n > 0 => request.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        let _ = conn.write_all(response.as_bytes());
    }
}

struct Serving {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct State {
    serving: Mutex<Option<Serving>>,
}

impl State {
    fn serve(&self, d: &Daemon) -> Result<(), Error> {
        let udp = d.udp_socket("udp")?;
        let http = d.listener("http")?;
        udp.set_nonblocking(true)?;
        http.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let threads = vec![
            {
                let stop = stop.clone();
                std::thread::spawn(move || echo(udp, stop))
            },
            {
                let stop = stop.clone();
                std::thread::spawn(move || serve_http(http, stop))
            },
        ];
        *self.serving.lock().unwrap() = Some(Serving { stop, threads });
        Ok(())
    }

    /// Stops serving: the threads finish what they read and drop their
    /// sockets, duplicates of the inherited ones.
    fn stop(&self) {
        let serving = self.serving.lock().unwrap().take();
        if let Some(s) = serving {
            s.stop.store(true, Ordering::SeqCst);
            for t in s.threads {
                let _ = t.join();
            }
        }
    }
}

struct Probe {
    daemon: Weak<Daemon>,
    state: Arc<State>,
}

impl Probe {
    fn serve(&self) -> Result<(), Error> {
        self.state.serve(&self.daemon.upgrade().expect("the daemon outlives its hooks"))
    }
}

impl Hooks for Probe {
    fn warm(&self) -> Result<(), Error> {
        Ok(())
    }
    fn drain(&self, _deadline: Option<Instant>) -> Result<(), Error> {
        self.state.stop();
        say("drained");
        Ok(())
    }
    fn seal(&self) -> Result<SealReport, Error> {
        Ok(SealReport::default())
    }
    fn begin(&self, _sealed: &SealedState) -> Result<(), Error> {
        self.serve()
    }
    fn resume(&self, _data_changed: bool) -> Result<(), Error> {
        self.serve()
    }
    fn retire(&self) {
        self.state.stop();
    }
}

fn main() {
    // SAFETY: plain libc calls on a local set, before any thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let options = Options { build_id: "rust-udp-probe".into(), ..Options::default() };
    let daemon = Arc::new(Daemon::new(options).unwrap_or_else(|e| {
        eprintln!("udp_probe: {}", e);
        std::process::exit(2);
    }));
    if daemon.role() == Role::Standalone {
        eprintln!("udp_probe: needs a supervisor (baton supervise)");
        std::process::exit(2);
    }
    say(&format!("stream on udp: {}", code_and_text(daemon.listener("udp"))));
    say(&format!("datagram on http: {}", code_and_text(daemon.udp_socket("http"))));

    let weak = Arc::downgrade(&daemon);
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: a blocked set and an int to fill.
        while unsafe { libc::sigwait(&set, &mut sig) } != 0 {}
        if let Some(d) = weak.upgrade() {
            let _ = d.request_exit(0);
        }
    });
    let state = Arc::new(State::default());
    if let Err(e) = daemon.start(Probe { daemon: Arc::downgrade(&daemon), state: state.clone() }) {
        say(&format!("start failed {} {}", e.code().as_raw(), e));
        std::process::exit(1);
    }
    if daemon.role() != Role::Successor {
        // A successor serves from begin.
        if let Err(e) = state.serve(&daemon) {
            say(&format!("serve failed {} {}", e.code().as_raw(), e));
            std::process::exit(1);
        }
    }
    let code = daemon.wait().unwrap_or(1);
    state.stop();
    drop(daemon);
    std::process::exit(code);
}
