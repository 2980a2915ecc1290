// The Daemon in this process, standalone (no supervisor): what the C ABI's
// unit tests check, through the safe API. One test, so that no two
// baton_create calls race in cargo's test threads.
use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct CountingHooks(Arc<AtomicUsize>);

impl Hooks for CountingHooks {
    fn warm(&self) -> Result<(), Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn drain(&self, _: Option<std::time::Instant>) -> Result<(), Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn seal(&self) -> Result<SealReport, Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(SealReport::default())
    }
    fn begin(&self, _: &SealedState) -> Result<(), Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn resume(&self, _: bool) -> Result<(), Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn retire(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("baton-rust-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(dir: &TempDir) -> Options {
    Options { build_id: "rust unit test".into(), data_dir: Some(dir.0.clone()), ..Options::default() }
}

#[test]
fn a_standalone_daemon_starts_and_exits_on_request() {
    let dir = TempDir::new("daemon");

    // Bad options are refused with clear errors.
    let e = Daemon::new(Options { state_schema_min: 3, state_schema_max: 2, ..options(&dir) }).err().unwrap();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("[3,2] is empty"), "{}", e);
    let e = Daemon::new(Options { build_id: "a\0b".into(), ..options(&dir) }).err().unwrap();
    assert_eq!(e.code(), Code::InvalidArgument);
    std::env::remove_var("BATON_DATA_DIR");
    let e = Daemon::new(Options::default()).err().unwrap();
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e);

    let events = Arc::new(AtomicUsize::new(0));
    let seen = events.clone();
    let d = Daemon::new(Options {
        log: Some(Box::new(move |_, _, _, _| {
            seen.fetch_add(1, Ordering::SeqCst);
        })),
        ..options(&dir)
    })
    .unwrap();
    assert_eq!(d.role(), Role::Standalone);
    // No supervisor to tell.
    assert_eq!(d.report_unhealthy("no supervisor").err().unwrap().code(), Code::FailedPrecondition);
    assert_eq!(d.data_dir(), dir.0);
    assert!(d.listener_names().is_empty());
    assert_eq!(d.listener("http").err().unwrap().code(), Code::NotFound);
    assert_eq!(d.listener("").err().unwrap().code(), Code::InvalidArgument);
    assert_eq!(d.udp_socket("dns").err().unwrap().code(), Code::NotFound);
    assert_eq!(d.udp_socket("").err().unwrap().code(), Code::InvalidArgument);
    assert_eq!(d.lease_epoch(), 0);

    // Handover outside a drain or seal: refused, the descriptor given back
    // still open; nothing to take. (Real handoffs: tests/sdk/handover_test.cc
    // with examples/handover_probe.rs.)
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let e = d.hand_over(HandoverKind::Connection, "x", a, b"unread").unwrap_err();
    assert_eq!(e.error().code(), Code::FailedPrecondition, "{}", e);
    let e = d.hand_over(HandoverKind::Connection, "a\0b", e.into_fd(), b"").unwrap_err();
    assert_eq!(e.error().code(), Code::InvalidArgument, "{}", e);
    let mut a = std::os::unix::net::UnixStream::from(e.into_fd());
    {
        use std::io::{Read, Write};
        b.write_all(b"ok").unwrap();
        let mut buf = [0u8; 2];
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
    }
    let as_error: Error = d.hand_over(HandoverKind::File, "x", a, b"").unwrap_err().into();
    assert_eq!(as_error.code(), Code::FailedPrecondition);
    assert_eq!(d.set_handover_state(b"state").unwrap_err().code(), Code::FailedPrecondition);
    assert!(d.take_handed_over().unwrap().is_empty());
    assert_eq!(d.take_handover_state(), Ok(None));

    // Standalone: start takes the data-dir lock, calls no hook.
    let calls = Arc::new(AtomicUsize::new(0));
    d.start(CountingHooks(calls.clone())).unwrap();
    assert_eq!(d.start(CountingHooks(calls.clone())).err().unwrap().code(), Code::FailedPrecondition);

    // A second daemon on the same data dir cannot start: the lock is held.
    let other = Daemon::new(options(&dir)).unwrap();
    let e = other.start(CountingHooks(calls.clone())).err().unwrap();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e);
    drop(other);

    // wait on one thread, request_exit on another: Daemon is Sync.
    let d = Arc::new(d);
    let waiter = {
        let d = d.clone();
        std::thread::spawn(move || d.wait())
    };
    d.request_exit(7).unwrap();
    d.request_exit(9).unwrap(); // the first request wins
    assert_eq!(waiter.join().unwrap(), Ok(7));
    assert_eq!(d.wait(), Ok(7));
    drop(d);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let _ = events.load(Ordering::SeqCst); // the log may or may not have spoken
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn daemon_is_send_and_sync() {
    assert_send_sync::<Daemon>();
    assert_send_sync::<Error>();
}

// What the typed listener helpers accept, on sockets of every kind a
// listener can be (the real udp:// path: tests/sdk/udp_test.cc).
#[test]
fn each_listener_helper_refuses_the_other_kinds_of_socket() {
    use std::os::unix::io::AsRawFd;
    use std::os::unix::net::{UnixDatagram, UnixListener};
    let dir = TempDir::new("kinds");
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp6 = TcpListener::bind("[::1]:0").ok(); // no IPv6 on some hosts
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let unix = UnixListener::bind(dir.0.join("s")).unwrap();
    let unix_dgram = UnixDatagram::bind(dir.0.join("d")).unwrap();

    assert_eq!(check_listener("http", tcp.as_raw_fd(), Kind::Tcp), Ok(()));
    if let Some(tcp6) = &tcp6 {
        assert_eq!(check_listener("http6", tcp6.as_raw_fd(), Kind::Tcp), Ok(()));
    }
    assert_eq!(check_listener("dns", udp.as_raw_fd(), Kind::Udp), Ok(()));

    let refused = |name: &str, fd: RawFd, want: Kind, says: &str| {
        let e = check_listener(name, fd, want).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e);
        assert!(e.message().starts_with(&format!("listener {:?} is ", name)), "{}", e);
        assert!(e.message().contains(says), "{} does not say {:?}", e, says);
    };
    refused("dns", udp.as_raw_fd(), Kind::Tcp, "a datagram socket (udp://), not a TCP listener: use udp_socket");
    refused("http", tcp.as_raw_fd(), Kind::Udp, "a stream listener (tcp://), not a UDP socket: use listener");
    refused("sock", unix.as_raw_fd(), Kind::Tcp, "a unix socket (unix:), not a TCP listener");
    refused("sock", unix.as_raw_fd(), Kind::Udp, "a unix socket (unix:), not a UDP socket");
    refused("gram", unix_dgram.as_raw_fd(), Kind::Udp, "a unix socket (unix:), not a UDP socket");
    let file = std::fs::File::open("/dev/null").unwrap();
    let e = check_listener("null", file.as_raw_fd(), Kind::Tcp).unwrap_err();
    assert_eq!(e.code(), Code::IoError, "{}", e);
}
