"""A WSGI key-value app for gunicorn (Debian's python3-gunicorn), as a user
would deploy it: gunicorn itself is unmodified and takes its socket from
LISTEN_FDS and says READY=1 on NOTIFY_SOCKET. PUT/GET /kv/<key> are files
in $BATON_DATA_DIR (rename, so two generations may serve at once)."""
import os
import re
import threading

DATA = os.environ.get("BATON_DATA_DIR", ".")
KEY = re.compile(r"^/kv/([A-Za-z0-9_-]{1,200})$")


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    if path == "/healthz":
        body = f"pid={os.getppid()} gunicorn\n".encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    m = KEY.match(path)
    if not m:
        start_response("400 Bad Request", [("Content-Length", "0")])
        return [b""]
    f = os.path.join(DATA, m.group(1))
    if method == "PUT":
        n = int(environ.get("CONTENT_LENGTH") or 0)
        value = environ["wsgi.input"].read(n)
        tmp = f"{f}.tmp.{os.getpid()}.{threading.get_ident()}"
        with open(tmp, "wb") as fh:
            fh.write(value)
        os.rename(tmp, f)
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    try:
        with open(f, "rb") as fh:
            body = fh.read()
    except FileNotFoundError:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
