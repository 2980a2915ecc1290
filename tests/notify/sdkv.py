#!/usr/bin/env python3
"""sdkv.py: the Python twin of sdkv.c, a key-value HTTP daemon that knows
nothing of baton: listening sockets from LISTEN_FDS (sd_listen_fds(3)) and
READY=1 / STATUS= / STOPPING=1 on $NOTIFY_SOCKET (sd_notify(3)), both by
hand with the standard library only.

  PUT /kv/<key>, GET /kv/<key> (files in --data), GET /healthz

SIGTERM: STOPPING=1, stop accepting, finish the requests in flight, exit 0.
--fail-before-ready CODE exits before READY=1 (a broken build)."""
import argparse
import http.server
import os
import re
import signal
import socket
import sys
import threading

KEY = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def notify(message):
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), path)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 2  # an idle keep-alive connection does not hold up the exit
    data_dir = "."
    stopping = False

    def log_message(self, *args):
        pass

    def reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if Handler.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def key_file(self):
        key = self.path[len("/kv/"):] if self.path.startswith("/kv/") else ""
        return os.path.join(Handler.data_dir, key) if KEY.match(key) else None

    def do_GET(self):
        if self.path == "/healthz":
            return self.reply(200, f"pid={os.getpid()} python\n".encode())
        f = self.key_file()
        if f is None:
            return self.reply(400)
        try:
            with open(f, "rb") as fh:
                return self.reply(200, fh.read())
        except FileNotFoundError:
            return self.reply(404)

    def do_PUT(self):
        f = self.key_file()
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if f is None:
            return self.reply(400)
        tmp = f"{f}.tmp.{os.getpid()}.{threading.get_ident()}"
        with open(tmp, "wb") as fh:
            fh.write(body)
        os.rename(tmp, f)
        self.reply(200)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=os.environ.get("BATON_DATA_DIR", "."))
    p.add_argument("--fail-before-ready", type=int, default=None)
    args = p.parse_args()
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS", "0")) < 1:
        print("sdkv.py: no LISTEN_FDS for this pid: start me socket-activated", file=sys.stderr)
        return 1
    if args.fail_before_ready is not None:
        return args.fail_before_ready
    Handler.data_dir = args.data
    sock = socket.socket(fileno=3)
    server = http.server.ThreadingHTTPServer(sock.getsockname(), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.daemon_threads = False
    server.block_on_close = True

    def stop(signum, frame):
        Handler.stopping = True
        notify("STOPPING=1")
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    notify(f"READY=1\nSTATUS=serving as pid {os.getpid()}")
    server.serve_forever(poll_interval=0.05)
    sock.close()
    server.server_close()  # joins the request threads: in-flight requests finish
    return 0


if __name__ == "__main__":
    sys.exit(main())
