//! rustkvd's HTTP interface, kvd's: `PUT /kv/<key>` (answered with the
//! revision once fsynced), `GET /kv/<key>` (404 if absent), `GET /healthz`.
//! HTTP/1.1 with keep-alive over std's sockets, a thread per connection. It
//! knows nothing about baton: it serves a listener until drained or stopped.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::store::{Store, MAX_KEY, MAX_VALUE};

/// How often an idle connection and the accept loop look at the flags.
const TICK: Duration = Duration::from_millis(10);
const MAX_HEADER: usize = 64 << 10;

#[derive(Default)]
struct State {
    connections: usize,
    /// Set by a drain: idle connections close once it passed.
    idle_deadline: Option<Instant>,
    /// Every connection not in the middle of a request closes.
    closing: bool,
    /// Connections given up by a drain for handover, with their unread bytes.
    released: Vec<(TcpStream, Vec<u8>)>,
}

/// The server; shared by its threads (`Arc`).
pub struct Server {
    store: Arc<Store>,
    draining: AtomicBool, // answers say Connection: close
    releasing: AtomicBool, // connections give themselves up at a request boundary
    state: Mutex<State>,
    changed: Condvar,
    accept: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
}

impl Server {
    /// A server of `store`, serving nothing yet.
    pub fn new(store: Arc<Store>) -> Arc<Server> {
        Arc::new(Server {
            store,
            draining: AtomicBool::new(false),
            releasing: AtomicBool::new(false),
            state: Mutex::default(),
            changed: Condvar::new(),
            accept: Mutex::new(None),
        })
    }

    /// Accepts on `l` on a thread of its own, until drained or stopped.
    pub fn serve(self: &Arc<Self>, l: TcpListener) -> io::Result<()> {
        // O_NONBLOCK is shared with the other holders of the socket; they
        // poll too. It lets the loop notice `stop` without closing the socket.
        l.set_nonblocking(true)?;
        self.stop_accepting();
        self.draining.store(false, Ordering::SeqCst);
        self.releasing.store(false, Ordering::SeqCst);
        {
            let mut st = self.state.lock().unwrap();
            st.idle_deadline = None;
            st.closing = false;
            st.released.clear(); // released too late for the last drain: close them
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (server, flag) = (self.clone(), stop.clone());
        let thread = std::thread::spawn(move || server.accept_loop(l, &flag));
        *self.accept.lock().unwrap() = Some((stop, thread));
        Ok(())
    }

    fn accept_loop(self: Arc<Self>, l: TcpListener, stop: &AtomicBool) {
        let mut pfd = libc::pollfd { fd: l.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        while !stop.load(Ordering::SeqCst) {
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, TICK.as_millis() as i32) };
            match l.accept() {
                Ok((c, _)) => self.spawn_connection(c, Vec::new()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => std::thread::sleep(TICK), // e.g. out of fds: try again
            }
        }
        // Dropping l closes our dup; the listening socket stays open.
    }

    /// Serves `c` on a thread of its own, `unread` being bytes already read
    /// from it and not processed.
    fn spawn_connection(self: &Arc<Self>, c: TcpStream, unread: Vec<u8>) {
        self.state.lock().unwrap().connections += 1;
        let server = self.clone();
        std::thread::spawn(move || {
            let _ = server.connection(c, unread);
            server.state.lock().unwrap().connections -= 1;
            server.changed.notify_all();
        });
    }

    /// Serves a connection another process served before (released by its
    /// `drain_for_handover`), starting with the bytes it read and did not
    /// process.
    pub fn adopt(self: &Arc<Self>, c: TcpStream, unread: Vec<u8>) {
        self.spawn_connection(c, unread);
    }

    /// Stops accepting and waits for the accept loop to end.
    fn stop_accepting(&self) {
        let accept = self.accept.lock().unwrap().take();
        if let Some((stop, thread)) = accept {
            stop.store(true, Ordering::SeqCst);
            let _ = thread.join();
        }
    }

    /// Stops accepting, answers every further request with Connection:
    /// close, waits for the connections to end, and closes those still
    /// silent after the idle wait (min(1 s, half the time left)); at the
    /// deadline it closes all but those in the middle of a request.
    pub fn drain(&self, deadline: Option<Instant>) {
        self.draining.store(true, Ordering::SeqCst);
        self.stop_accepting();
        let now = Instant::now();
        let idle = deadline.map_or(Duration::from_secs(1), |d| {
            Duration::from_secs(1).min(d.saturating_duration_since(now) / 2)
        });
        let mut st = self.state.lock().unwrap();
        st.idle_deadline = Some(now + idle);
        while st.connections > 0 {
            let left = deadline.map_or(Duration::from_secs(3600), |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                st.closing = true;
                return;
            }
            st = self.changed.wait_timeout(st, left.min(TICK * 10)).unwrap().0;
        }
    }

    /// Like `drain`, but instead of closing its keep-alive connections it
    /// releases them at a request boundary (between requests, or with a
    /// request partly read): returns each with the bytes it read and did
    /// not process, once no connection is served any more. At the deadline
    /// the rest close as in `drain`.
    pub fn drain_for_handover(&self, deadline: Option<Instant>) -> Vec<(TcpStream, Vec<u8>)> {
        self.releasing.store(true, Ordering::SeqCst);
        self.stop_accepting();
        let mut st = self.state.lock().unwrap();
        while st.connections > 0 {
            let left = deadline.map_or(Duration::from_secs(3600), |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                st.closing = true;
                break;
            }
            st = self.changed.wait_timeout(st, left.min(TICK * 10)).unwrap().0;
        }
        std::mem::take(&mut st.released)
    }

    /// Ends serving: no listener; connections close at their next
    /// response boundary (waits up to 2 s for them).
    pub fn stop(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.stop_accepting();
        let mut st = self.state.lock().unwrap();
        st.closing = true;
        let until = Instant::now() + Duration::from_secs(2);
        while st.connections > 0 && Instant::now() < until {
            st = self.changed.wait_timeout(st, TICK * 10).unwrap().0;
        }
    }

    /// True if an idle connection should close now.
    fn close_idle(&self) -> bool {
        let st = self.state.lock().unwrap();
        st.closing || st.idle_deadline.map_or(false, |d| Instant::now() >= d)
    }

    /// Serves one connection until either side ends it.
    fn connection(&self, mut c: TcpStream, mut buf: Vec<u8>) -> io::Result<()> {
        c.set_nonblocking(false)?;
        c.set_nodelay(true)?;
        c.set_read_timeout(Some(TICK))?;
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            // Read until a whole request is in buf.
            let (head_len, body_len) = loop {
                if let Some(end) = find(&buf, b"\r\n\r\n") {
                    let len = content_length(&buf[..end]);
                    match len {
                        Some(n) if n <= MAX_VALUE => {
                            if buf.len() >= end + 4 + n {
                                break (end + 4, n);
                            }
                        }
                        Some(_) => return respond(&mut c, 413, b"body too large\n", true),
                        None => return respond(&mut c, 400, b"bad request: no Content-Length\n", true),
                    }
                } else if buf.len() > MAX_HEADER {
                    return respond(&mut c, 431, b"header too large\n", true);
                }
                // A request boundary: no whole request unprocessed in buf.
                if self.releasing.load(Ordering::SeqCst) {
                    self.state.lock().unwrap().released.push((c, buf));
                    return Ok(());
                }
                match c.read(&mut chunk) {
                    Ok(0) => return Ok(()),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                        // Silent between requests: close if draining long enough.
                        if buf.is_empty() && self.close_idle() {
                            return Ok(());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
            let body = buf[head_len..head_len + body_len].to_vec();
            buf.drain(..head_len + body_len);
            let mut lines = head.split("\r\n");
            let mut parts = lines.next().unwrap_or("").split(' ');
            let (method, target, version) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
            let client_close = version != Some("HTTP/1.1")
                || lines.any(|l| {
                    let l = l.to_ascii_lowercase();
                    l.starts_with("connection:") && l.contains("close")
                });
            let (status, text) = self.handle(method, target, &body);
            let close = client_close || self.draining.load(Ordering::SeqCst);
            respond(&mut c, status, &text, close)?;
            if close {
                return Ok(());
            }
        }
    }

    fn handle(&self, method: &str, target: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let path = target.split('?').next().unwrap_or("");
        if method == "GET" && path == "/healthz" {
            let (rev, _) = self.store.state();
            return (200, format!("{{\"status\":\"ok\",\"pid\":{},\"revision\":{}}}\n", std::process::id(), rev).into());
        }
        let key = match path.strip_prefix("/kv/") {
            Some(k) if !k.is_empty() => k,
            _ => return (404, b"no such route\n".to_vec()),
        };
        if key.len() > MAX_KEY {
            return (414, b"key too long\n".to_vec());
        }
        match method {
            "GET" => match self.store.get(key) {
                Some(v) => (200, v),
                None => (404, b"no such key\n".to_vec()),
            },
            "PUT" => match self.store.put(key, body) {
                Ok(rev) => (200, rev.to_string().into()),
                Err(_) => (503, b"not writable\n".to_vec()),
            },
            _ => (405, b"method not allowed\n".to_vec()),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The Content-Length of a request head (0 if none); None if the body
/// cannot be read (chunked, or a bad number).
fn content_length(head: &[u8]) -> Option<usize> {
    let head = String::from_utf8_lossy(head);
    let mut len = 0;
    for line in head.split("\r\n").skip(1) {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = value.trim().parse().ok()?,
            "transfer-encoding" => return None,
            _ => {}
        }
    }
    Some(len)
}

fn respond(c: &mut TcpStream, status: u16, body: &[u8], close: bool) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let connection = if close { "Connection: close\r\n" } else { "" };
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n",
        status,
        reason,
        body.len(),
        connection
    );
    c.write_all(&[head.as_bytes(), body].concat())
}
