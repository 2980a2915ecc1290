//! rustkvd is kvd's HTTP key-value store in Rust, with its state in an
//! append-only log in the data dir, upgradable in place by baton through
//! the Rust SDK (crate `baton`, over libbaton's C ABI).
//!
//! ```text
//! rustkvd [--data-dir DIR] [--listen-name NAME] [--build-id ID] [--port PORT]
//!         [--schema-min N] [--schema-max N] [--hand-over]
//! ```
//!
//! With `--hand-over` the drain hands its keep-alive connections, with the
//! bytes read and not processed, to the successor instead of closing them
//! (its clients see no reconnect); every generation serves what it is
//! handed, so the successor needs no flag. Off by default: a successor that
//! takes nothing (gokvd, or an older rustkvd) would leave them unserved.
//!
//! Supervised (`baton supervise ... -- rustkvd`) it serves the inherited
//! listener NAME (default "http"); alone it listens on 127.0.0.1:PORT. The
//! data dir defaults to $BATON_DATA_DIR. Exit codes: 0 clean exit, 1 could
//! not start, 2 bad arguments or environment.
//!
//! This file is the whole baton integration: the hooks and main. The store
//! (store.rs) and the HTTP server (server.rs) do not know baton exists.

mod server;
mod store;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Instant;

use baton::{Code, Daemon, Error, HandoverKind, Hooks, Options, Role, SealReport, SealedState};
use server::Server;
use store::Store;

/// The hooks: the store, the server, and the listener it serves.
struct App {
    store: Arc<Store>,
    server: Arc<Server>,
    listener: TcpListener, // serve() gets a dup; a drain closes only that
    daemon: Weak<Daemon>,  // for handover (an Arc would keep the daemon alive)
    hand_over: bool,       // drain hands keep-alive connections to the successor
    fail_begin: bool,
    fail_seal: bool,
}

impl App {
    /// Opens the writer and serves a dup of the listener.
    fn open(&self) -> Result<(), Error> {
        self.store.open_writer()?;
        Ok(self.server.serve(self.listener.try_clone()?)?)
    }
}

impl Hooks for App {
    // The successor replays what is there, read-only (the incumbent still writes).
    fn warm(&self) -> Result<(), Error> {
        Ok(self.store.replay(true)?)
    }

    // Stop accepting, finish requests, close keep-alive connections, or
    // with --hand-over hand them to the successor with their unread bytes
    // (if it accepts them). Every acknowledged PUT is already fsynced.
    fn drain(&self, deadline: Option<Instant>) -> Result<(), Error> {
        let daemon = match self.daemon.upgrade() {
            Some(d) if self.hand_over && d.successor_accepts_handover() => d,
            _ => {
                self.server.drain(deadline);
                return Ok(());
            }
        };
        for (i, (c, unread)) in self.server.drain_for_handover(deadline).into_iter().enumerate() {
            if let Err(e) = daemon.hand_over(HandoverKind::Connection, &format!("http-{}", i), c, &unread) {
                // Dropped with the error: the client sees a close, as without handover.
                eprintln!("rustkvd: closing a connection instead of handing it over: {}", e);
            }
        }
        Ok(())
    }

    // Fsync and close the writer; report what is durable.
    fn seal(&self) -> Result<SealReport, Error> {
        let closed = self.store.close_writer().map_err(|e| Error::new(Code::IoError, format!("seal: {}", e)));
        if self.fail_seal {
            return Err(Error::new(Code::IoError, "seal: --fail-seal"));
        }
        closed?;
        let (revision, fingerprint) = self.store.state();
        Ok(SealReport { revision, fingerprint })
    }

    // We own the data now: replay the tail, check it ends where the
    // incumbent sealed, open the writer, serve.
    fn begin(&self, sealed: &SealedState) -> Result<(), Error> {
        self.store.replay(false)?;
        let (rev, fp) = self.store.state();
        if sealed.sealed && (rev != sealed.revision || fp != sealed.fingerprint) {
            let msg = format!("replayed revision {} fingerprint {}, but the incumbent sealed {} {}",
                              rev, fp, sealed.revision, sealed.fingerprint);
            return Err(Error::new(Code::FailedPrecondition, msg));
        }
        if self.fail_begin {
            return Err(Error::new(Code::FailedPrecondition, "--fail-begin"));
        }
        self.open()
    }

    // After a rollback: reload if another process wrote, then serve, the
    // connections handed over included (they are ours again).
    fn resume(&self, data_changed: bool) -> Result<(), Error> {
        if data_changed { self.store.reload()? } else { self.store.replay(false)? }
        self.open()?;
        if let Some(d) = self.daemon.upgrade() {
            adopt_handed_over(&d, &self.server)?;
        }
        Ok(())
    }

    // The successor serves: stop.
    fn retire(&self) {
        self.server.stop();
    }
}

fn main() {
    let args = Args::parse();
    if args.exit_at_start {
        std::process::exit(1);
    }
    let signals = block_signals(); // before any thread, so every thread inherits the mask
    let options = Options {
        build_id: args.build_id.clone(),
        state_schema_min: args.schema_min,
        state_schema_max: args.schema_max,
        data_dir: args.data_dir.clone(),
        ..Options::default()
    };
    let daemon = Arc::new(Daemon::new(options).unwrap_or_else(|e| die(2, &e)));
    let store = Arc::new(Store::new(&daemon.data_dir()));
    let listener = match daemon.role() {
        Role::Standalone => TcpListener::bind(("127.0.0.1", args.port)).map_err(Error::from),
        _ => daemon.listener(&args.listen_name),
    };
    let app = App {
        store: store.clone(),
        server: Server::new(store.clone()),
        listener: listener.unwrap_or_else(|e| die(2, &e)),
        daemon: Arc::downgrade(&daemon),
        hand_over: args.hand_over,
        fail_begin: args.fail_begin,
        fail_seal: args.fail_seal,
    };
    let server = app.server.clone();
    let listener = app.listener.try_clone().unwrap_or_else(|e| die(1, &e.into()));
    // Begin takes the connections an incumbent hands over (whatever this
    // generation's own --hand-over says).
    daemon.accept_handover().unwrap_or_else(|e| die(1, &e));
    // Cold start / standalone: takes the data-dir lock and returns.
    // Successor: runs warm and begin, and returns once we serve.
    daemon.start(app).unwrap_or_else(|e| die(1, &e));
    if daemon.role() != Role::Successor {
        // We hold the lock: recover (cutting a torn tail), then serve.
        let opened = store.replay(false).and_then(|_| store.open_writer());
        opened.and_then(|_| server.serve(listener)).unwrap_or_else(|e| die(1, &e.into()));
    }
    // A successor serves the connections the incumbent handed over only now
    // that start returned: until then a rollback gives them back.
    adopt_handed_over(&daemon, &server).unwrap_or_else(|e| die(1, &e));
    eprintln!("rustkvd: serving at revision {}", store.state().0);
    let weak: Weak<Daemon> = Arc::downgrade(&daemon);
    std::thread::spawn(move || wait_for_signal(signals, weak));
    let code = daemon.wait().unwrap_or_else(|e| {
        eprintln!("rustkvd: {}", e);
        1
    });
    server.stop();
    if let Err(e) = store.close_writer() {
        eprintln!("rustkvd: {}", e);
    }
    drop(daemon); // releases the data-dir lock
    eprintln!("rustkvd: exiting with {}", code);
    std::process::exit(code);
}

/// Serves every connection handed over to this process (by the incumbent,
/// or its own back after a rollback); closes anything else.
fn adopt_handed_over(daemon: &Daemon, server: &Arc<Server>) -> Result<(), Error> {
    for h in daemon.take_handed_over()? {
        if h.kind == HandoverKind::Connection {
            server.adopt(TcpStream::from(h.fd), h.metadata);
        }
    }
    Ok(())
}

fn die(code: i32, e: &Error) -> ! {
    eprintln!("rustkvd: {}", e);
    std::process::exit(code);
}

/// Blocks SIGTERM and SIGINT in this thread (and those it starts), for
/// wait_for_signal to take them.
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// SIGTERM or SIGINT: a clean exit (baton's request_exit, never from a
/// signal handler).
fn wait_for_signal(set: libc::sigset_t, daemon: Weak<Daemon>) {
    let mut sig = 0;
    // SAFETY: a blocked set and an int to fill.
    while unsafe { libc::sigwait(&set, &mut sig) } != 0 {}
    if let Some(d) = daemon.upgrade() {
        let _ = d.request_exit(0);
    }
}

/// The command line.
struct Args {
    data_dir: Option<PathBuf>,
    listen_name: String,
    build_id: String,
    port: u16,
    schema_min: u32,
    schema_max: u32,
    exit_at_start: bool, // testing: exit 1 at once
    fail_begin: bool,    // testing: the begin hook fails
    fail_seal: bool,     // testing: the seal hook fails
    hand_over: bool,     // drain hands keep-alive connections over
}

impl Args {
    fn parse() -> Args {
        let mut a = Args {
            data_dir: None,
            listen_name: "http".into(),
            build_id: "rustkvd".into(),
            port: 8080,
            // 2 is the kv.log format rustkvd shares byte for byte with gokvd
            // (docs/integrate.md, "State schemas"); kvd (1), pykvd (3) and
            // ckvd (4) write others, so a handoff to or from them is refused.
            schema_min: 2,
            schema_max: 2,
            exit_at_start: false,
            fail_begin: false,
            fail_seal: false,
            hand_over: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = || {
                inline.clone().or_else(|| it.next()).unwrap_or_else(|| usage(format!("{} needs a value", flag)))
            };
            match flag.as_str() {
                "--data-dir" => a.data_dir = Some(PathBuf::from(value())),
                "--listen-name" => a.listen_name = value(),
                "--build-id" => a.build_id = value(),
                "--port" => a.port = number(&flag, value()),
                "--schema-min" => a.schema_min = number(&flag, value()),
                "--schema-max" => a.schema_max = number(&flag, value()),
                "--exit-at-start" => a.exit_at_start = true,
                "--fail-begin" => a.fail_begin = true,
                "--fail-seal" => a.fail_seal = true,
                "--hand-over" => a.hand_over = true,
                _ => usage(format!("unexpected argument {:?}", arg)),
            }
        }
        a
    }
}

fn usage(msg: String) -> ! {
    eprintln!("rustkvd: {}", msg);
    eprintln!("usage: rustkvd [--data-dir DIR] [--listen-name NAME] [--build-id ID] [--port PORT] \
               [--schema-min N] [--schema-max N] [--hand-over]");
    std::process::exit(2);
}

/// The value of a numeric flag, or a usage error.
fn number<T: std::str::FromStr>(flag: &str, v: String) -> T {
    v.parse().unwrap_or_else(|_| usage(format!("{}: not a number in range: {:?}", flag, v)))
}
