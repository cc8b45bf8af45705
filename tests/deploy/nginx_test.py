#!/usr/bin/env python3
"""Two instances of the release binary on one PostgreSQL database behind nginx, on loopback.

Shows that a token issued by one instance is accepted by the other, that a post created
through one is listed through the other, that the login rate limit counts failures across
both, that behind nginx the per-address limit counts the client's own address (clients on
127.0.0.2 and 127.0.0.3, nginx on 127.0.0.1), and that killing one instance during a GET load
through nginx fails no request (through a copy of the site whose request rate no client has).
/metrics, which each instance serves, is not reachable through nginx in any spelling of its path
(trailing or doubled slashes, a query, percent-encoding, case), and nginx drops idle upstream
connections before the instances do.
Live events through nginx: a subscriber on A receives a post written through B within a second,
small events pass at once (nginx does not buffer the stream), a ticket from POST /events/ticket
opens one stream, and an idle stream outlives nginx's proxy_read_timeout thanks to the service's
keep-alive comments (shown against a copy of the site with a shorter timeout, in front of A only).
An ended session (logout, ending one or all other sessions, a password change, deleting the
account) has its access token refused within a second by the instance that did not end it, on
reads and writes alike; a refresh through nginx works on both instances, and its spent refresh
token presented again within the reuse grace, on either instance, does not end the session.
Bounds: nginx serves HTTPS only (a certificate made for the run; TLS 1.2 and 1.3, HSTS)
and plain HTTP redirects there, but for certbot's challenges; past the shipped request rate, the
write rate, or the requests one address may have open at once (event streams), nginx answers
429 with Retry-After and a problem document like the service's, per client address; its access
log holds no query string (a `?ticket=` is a credential). The systemd unit bounds memory, tasks
and descriptors and keeps its hardening (`systemd-analyze verify` too, when systemd is there).
The nginx configuration is deploy/nginx-social-api.conf with the test's ports and paths.

Run: python3 tests/deploy/nginx_test.py   (needs nginx, openssl, PostgreSQL and
target/release/api; API_BIN=path runs another build of the binary)
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import nginx_site

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("API_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "api")
ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
SECRET = "nginx-test-secret-that-is-at-least-32-bytes"
ADDRESS_LIMIT = 6
SITE = nginx_site.SITE
UNIT = os.path.join(ROOT, "deploy", "social-api@.service")
ENV_EXAMPLE = os.path.join(ROOT, "deploy", "social-api.env.example")
# What the clients below trust: main adds the certificate of each nginx of the run.
TLS = ssl.create_default_context()
results = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def decode(raw, content_type):
    """A JSON body as data; anything else (nginx's own pages) as text."""
    if not raw:
        return None
    return json.loads(raw) if "json" in (content_type or "") else raw.decode(errors="replace")


def request(method, url, body=None, token=None, form=False, headers=None):
    """Returns the status and the decoded body."""
    status, _, body = exchange(method, url, body, token, form, headers)
    return status, body


def exchange(method, url, body=None, token=None, form=False, headers=None):
    """Returns the status, the response headers and the decoded body."""
    data, all_headers = None, dict(headers or {})
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=10, context=TLS) as response:
            return (response.status, response.headers,
                    decode(response.read(), response.headers.get("Content-Type")))
    except urllib.error.HTTPError as err:
        return err.code, err.headers, decode(err.read(), err.headers.get("Content-Type"))


def connection_to(base, source="127.0.0.1"):
    """An http.client connection to `base` (http:// or https://, trusting the run's
    certificates) from the local address `source`."""
    url = urllib.parse.urlsplit(base)
    if url.scheme == "https":
        return http.client.HTTPSConnection(url.hostname, url.port, timeout=10, source_address=(source, 0),
                                           context=TLS)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=10, source_address=(source, 0))


def socket_to(base, source="127.0.0.1"):
    """A socket connected to `base`, TLS on it for https:// (HTTP/1.1, the run's certificates)."""
    url = urllib.parse.urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port), timeout=10, source_address=(source, 0))
    return TLS.wrap_socket(sock, server_hostname=url.hostname) if url.scheme == "https" else sock


def send(base, method, target, source="127.0.0.1", body=None, headers=None):
    """`method target` to `base` from the local address `source` (a JSON body, when given),
    on a connection of its own; returns the status, the response headers and the decoded body."""
    connection = connection_to(base, source)
    try:
        all_headers = dict(headers or {})
        if body is not None:
            body = json.dumps(body)
            all_headers["Content-Type"] = "application/json"
        connection.request(method, target, body, all_headers)
        response = connection.getresponse()
        return response.status, response.headers, decode(response.read(), response.headers.get("Content-Type"))
    finally:
        connection.close()


def login_from(source, base, email, password, forwarded_for):
    """POST /login to `base` from the local address `source`, claiming to forward for
    `forwarded_for`; returns the status."""
    return send(base, "POST", "/login", source, {"email": email, "password": password},
                {"X-Forwarded-For": forwarded_for})[0]


def raw_get(base, target):
    """GET `target` exactly as written (no client-side normalisation); returns (status, body)."""
    with socket_to(base) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode(errors="replace")


class EventStream:
    """GET /events on a socket of its own, read by a thread: the status and headers, then
    every event (`id`, `event`, `data` parsed) and keep-alive comment with the time.monotonic()
    it arrived, and when the stream closed. Decodes HTTP/1.1 chunked framing itself, so what
    it records is what came off the wire, when it came."""

    def __init__(self, base, target, token=None, source="127.0.0.1"):
        self.opened = time.monotonic()
        self.sock = socket_to(base, source)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
                          f"{auth}\r\n".encode())
        self.file = self.sock.makefile("rb")
        self.status, self.headers = 0, {}
        self.events, self.comments, self.arrivals = [], [], []
        self.closed_at = None
        try:
            status_line = self.file.readline().decode()
            self.status = int(status_line.split(" ", 2)[1]) if status_line else 0
            while (line := self.file.readline().decode()) not in ("\r\n", "\n", ""):
                name, _, value = line.partition(":")
                self.headers.setdefault(name.strip().lower(), []).append(value.strip())
        except OSError:  # no head within 10 s (a proxy holding it back, say): status 0
            self.status = 0
        self.headers_at = time.monotonic()
        self.thread = threading.Thread(target=self._read, daemon=True)
        if self.status:
            self.sock.settimeout(None)
            self.thread.start()
        else:
            self.closed_at = self.headers_at

    def header(self, name):
        return ", ".join(self.headers.get(name.lower(), []))

    def _chunks(self):
        chunked = "chunked" in self.header("transfer-encoding")
        while True:
            if not chunked:
                data = self.file.read1(65536)
                if not data:
                    return
                yield data
                continue
            size = self.file.readline()
            if not size or int(size.split(b";")[0], 16) == 0:
                return
            data = self.file.read(int(size.split(b";")[0], 16))
            self.file.readline()
            yield data

    def _read(self):
        pending, fields = b"", {}
        try:
            for data in self._chunks():
                now = time.monotonic()
                self.arrivals.append(now)
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    line = line.rstrip(b"\r").decode()
                    if not line:
                        if fields:
                            self.events.append((now, fields))
                        fields = {}
                    elif line.startswith(":"):
                        self.comments.append(now)
                    else:
                        name, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        fields[name] = fields[name] + "\n" + value if name in fields else value
        except OSError:
            pass
        self.closed_at = time.monotonic()

    def wait_for(self, predicate, seconds, after=0):
        """The first event (arrival time, fields) from the `after`th on matching `predicate`,
        waiting at most `seconds` for it; None if none came."""
        deadline = time.monotonic() + seconds
        while True:
            found = next((e for e in self.events[after:] if predicate(e[1])), None)
            if found or time.monotonic() > deadline or self.closed_at:
                return found
            time.sleep(0.005)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self.thread.is_alive():
            self.thread.join(timeout=5)


def post_event(post_id, kind="post.created"):
    """A predicate on an event's fields: `kind` of the post `post_id`."""
    def matches(fields):
        if fields.get("event") != kind:
            return False
        data = json.loads(fields.get("data") or "{}")
        return data.get("id", data.get("post_id")) == post_id
    return matches


# Spellings of /metrics a client may send; nginx decodes and normalises before matching a location.
METRICS_SPELLINGS = ["/metrics", "/metrics/", "/metrics?x", "/metrics/?x=1", "//metrics", "///metrics/",
                     "/./metrics", "/posts/../metrics", "/%6detrics", "/%6D%65%74%72%69%63%73", "/metrics%2F",
                     "/metrics%2f?x", "/%2Fmetrics", "/metrics%3Fx", "/metrics;x", "/METRICS", "/Metrics/"]
METRIC = "http_requests_total"
SERVICE_IDLE_TIMEOUT = 30  # HTTP_IDLE_TIMEOUT_SECONDS's default, which the instances run with


EVENTS_KEEP_ALIVE = 15  # seconds between the comments of an idle GET /events (the service's)
TEST_READ_TIMEOUT = 20  # proxy_read_timeout of the test's site in front of A only


def proxy_read_timeout():
    """The site's proxy_read_timeout in seconds (nginx's default: 60)."""
    with open(os.path.join(ROOT, "deploy", "nginx-social-api.conf")) as f:
        found = re.findall(r"^\s*proxy_read_timeout\s+(\d+)s?;", f.read(), re.M)
    return min(int(value) for value in found) if found else 60


def upstream_keepalive_timeout():
    """The upstream block's keepalive_timeout in seconds (nginx's default: 60)."""
    with open(os.path.join(ROOT, "deploy", "nginx-social-api.conf")) as f:
        upstream = re.search(r"upstream social_api \{(.*?)\}", f.read(), re.S).group(1)
    found = re.search(r"^\s*keepalive_timeout\s+(\d+)s?;", upstream, re.M)
    return int(found.group(1)) if found else 60


def login(base, email, password):
    """POST /login through `base`; the Token, or None."""
    status, token = request("POST", f"{base}/login", {"username": email, "password": password}, form=True)
    return token if status == 200 else None


# What an ended session's access token must be refused on (401): reads and a write.
PROBES = [("GET", "/posts", None), ("GET", "/posts/{post}", None), ("GET", "/users/me", None),
          ("POST", "/posts", {"title": "after the end", "content": "x"})]


def refused_within(base, token, post_id, since, seconds=1.0):
    """Polls every probe through `base` with `token` until each has answered 401 or `seconds`
    have passed since `since` (a time.monotonic()); returns the milliseconds from `since` until
    then and {probe: its last status} for the probes not refused."""
    late = {f"{method} {path.format(post=post_id)}": (body, None) for method, path, body in PROBES}
    while True:
        for probe, (body, _) in list(late.items()):
            method, path = probe.split(" ", 1)
            status, _ = request(method, base + path, body, token=token)
            if status == 401:
                del late[probe]
            else:
                late[probe] = (body, status)
        elapsed = time.monotonic() - since
        if not late or elapsed > seconds:
            return round(elapsed * 1000), {probe: status for probe, (_, status) in late.items()}
        time.sleep(0.02)


def check(name, condition, detail=""):
    results.append((name, bool(condition)))
    print(f"{'ok  ' if condition else 'FAIL'} {name}{'' if condition else ': ' + str(detail)}", flush=True)


def psql(sql, database="test"):
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-c", sql],
                   check=True, stdout=subprocess.DEVNULL)


def wait_healthy(base, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if request("GET", f"{base}/health")[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def start_instance(port, database_url, log):
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", DATABASE_URL=database_url,
               SECRET_KEY=SECRET, APP_ENV="production", BCRYPT_COST="4", RUST_LOG="warn",
               TRUSTED_PROXIES="127.0.0.1", LOGIN_MAX_FAILURES_PER_ADDRESS=str(ADDRESS_LIMIT),
               REGISTER_MAX_PER_ADDRESS="0", WRITES_PER_MINUTE="0",
               CORS_ALLOWED_ORIGINS="https://app.example.org",
               # Production requires mail settings; this test reads no mail, and nothing
               # listens on port 1: the verification mails wait in the outbox.
               SMTP_URL="smtp://127.0.0.1:1", MAIL_FROM="noreply@example.org",
               PUBLIC_URL="https://app.example.org")
    return subprocess.Popen([BINARY, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)


def get_load(url, token, seconds, threads=4):
    """GETs `url` from several threads for `seconds`; returns (total, failures)."""
    counts, lock = {"total": 0, "failed": []}, threading.Lock()
    stop = time.time() + seconds

    def worker():
        while time.time() < stop:
            try:
                status, _ = request("GET", url, token=token)
            except OSError as err:
                status = str(err)
            with lock:
                counts["total"] += 1
                if status != 200:
                    counts["failed"].append(status)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return counts["total"], counts["failed"]


def session_checks(a, b, proxy, password, post_id):
    """Ending a session through one instance, seen by the other within a second; a refresh
    through nginx, and its spent refresh token replayed within the grace on both instances."""
    name = {a: "A", b: "B"}
    new_password = "battery horse staple"

    def request_status(method, url, token, body=None):
        return request(method, url, body, token=token)[0]

    def other_session(base, token):
        _, sessions = request("GET", f"{base}/users/me/sessions", token=token)
        return next(s["id"] for s in sessions if not s["current"])

    # (what ends sessions, the instance it goes through, how: (x, y) -> status, what ends);
    # x is a session that logged in through A, y one of the same person through B.
    scenarios = [
        ("POST /logout", a, lambda x, y: request_status("POST", f"{a}/logout", x), "x"),
        ("DELETE /users/me/sessions/{id} (x's, by y)", b,
         lambda x, y: request_status("DELETE", f"{b}/users/me/sessions/{other_session(b, y)}", y), "x"),
        ("DELETE /users/me/sessions (by y)", b,
         lambda x, y: request_status("DELETE", f"{b}/users/me/sessions", y), "x"),
        ("PUT /users/me/password (by y)", b,
         lambda x, y: request_status("PUT", f"{b}/users/me/password", y,
                                     {"current_password": password, "new_password": new_password}), "x"),
        ("DELETE /users/me (by y)", b, lambda x, y: request_status("DELETE", f"{b}/users/me", y), "xy"),
    ]
    for n, (label, via, end, ends) in enumerate(scenarios):
        email = f"session{n}@example.org"
        request("POST", f"{a}/users", {"email": email, "password": password})
        tokens = {"x": (login(a, email, password) or {}).get("access_token"),
                  "y": (login(b, email, password) or {}).get("access_token")}
        before = [request_status("GET", f"{base}/users/me", tokens[t]) for t, base in (("x", b), ("y", a))]
        status = end(tokens["x"], tokens["y"])
        since = time.monotonic()
        other = b if via == a else a
        refused = {t: refused_within(other, tokens[t], post_id, since) for t in ends}
        ms = max(elapsed for elapsed, _ in refused.values())
        check(f"{label} through {name[via]} is 204 and ends {' and '.join(ends)}: refused (401) through "
              f"{name[other]} on {len(PROBES)} endpoints after {ms} ms (< 1 s)",
              before == [200, 200] and status == 204 and ms <= 1000
              and not any(late for _, late in refused.values()),
              (before, status, refused))
        if "y" not in ends:
            kept = [request_status("GET", f"{base}/users/me", tokens["y"]) for base in (a, b)]
            check(f"{label}: y still works through A and B", kept == [200, 200], kept)

    email = "refresh@example.org"
    request("POST", f"{a}/users", {"email": email, "password": password})
    first = login(proxy, email, password) or {}
    status, fresh = request("POST", f"{proxy}/login/refresh", {"refresh_token": first.get("refresh_token")})
    fresh = fresh if status == 200 else {}
    works = [request_status("GET", f"{base}/users/me", fresh.get("access_token")) for base in (a, b)]
    check("a refresh through nginx is 200, and its new access token works through A and B",
          status == 200 and fresh.get("refresh_token") != first.get("refresh_token") and works == [200, 200],
          (status, works))
    # One of A and B served the refresh: replaying on both reaches the other one for sure.
    # A replay after the 10 s grace ends the session; the Rust suite shows that, without the wait.
    replays = [request("POST", f"{base}/login/refresh", {"refresh_token": first.get("refresh_token")})
               for base in (a, b)]
    statuses = [status for status, _ in replays]
    successors = [body.get("refresh_token") if status == 200 else None for status, body in replays]
    works = [request_status("GET", f"{base}/users/me", fresh.get("access_token")) for base in (a, b)]
    check("the spent refresh token replayed through A and B within the grace is 200 both times, "
          "with the first use's successor each time, and the session goes on",
          statuses == [200, 200] and successors == [fresh.get("refresh_token")] * 2
          and works == [200, 200], (statuses, works))


def conditional_checks(a, b, proxy, token, post_id):
    """ETag, If-Match, If-None-Match and Link as clients behind nginx see them: nginx passes
    the tags through unchanged (strong: a proxy that weakened them would make every If-Match
    fail), and a version read through one instance guards a write through the other."""
    url = f"{proxy}/posts/{post_id}"
    status, headers, _ = exchange("GET", url, token=token)
    tag = headers.get("ETag", "")
    direct = exchange("GET", f"{a}/posts/{post_id}", token=token)[1].get("ETag")
    check("nginx passes the post's strong ETag through unchanged",
          status == 200 and tag.startswith('"') and tag == direct, (status, tag, direct))
    status, headers, body = exchange("GET", url, token=token, headers={"If-None-Match": tag})
    check("If-None-Match through nginx is 304 with the ETag and no body",
          status == 304 and headers.get("ETag") == tag and not body, (status, dict(headers), body))
    change = {"content": "changed through B"}
    status, headers, _ = exchange("PATCH", f"{b}/posts/{post_id}", change, token, headers={"If-Match": tag})
    fresh = headers.get("ETag")
    status_stale, headers_stale, problem = exchange("PATCH", url, {"content": "lost"}, token,
                                                    headers={"If-Match": tag})
    check("a write through B with A's tag is 200; the same tag through nginx is then 412 with the new ETag",
          status == 200 and status_stale == 412 and headers_stale.get("ETag") == fresh
          and problem.get("status") == 412, (status, status_stale, dict(headers_stale), problem))
    request("POST", f"{b}/posts", {"title": "a second post", "content": "x"}, token=token)
    status, headers, page = exchange("GET", f"{proxy}/posts?limit=1", token=token)
    link = headers.get("Link", "")
    target = link.split(";")[0].strip().strip("<>")
    status_next, _, next_page = exchange("GET", f"{proxy}{target}", token=token)
    check("a full page through nginx links to the next, which follows it",
          status == 200 and link.endswith('rel="next"') and status_next == 200
          and next_page and next_page[0]["id"] != page[0]["id"], (status, link, status_next))


def event_checks(a, b, proxy, proxy_a, token, password, post_id, certificate):
    """GET /events through nginx: a subscriber on A (through the site in front of A only)
    receives a post written through B within a second; small events pass one by one, not when
    a buffer fills; a ticket from POST /events/ticket opens a stream through nginx once; and an
    idle stream outlives nginx's proxy_read_timeout, kept alive by the service's comments."""
    shipped = proxy_read_timeout()
    check(f"the site's proxy_read_timeout ({shipped} s) is above the event stream's keep-alive "
          f"interval ({EVENTS_KEEP_ALIVE} s)", shipped > EVENTS_KEEP_ALIVE, shipped)
    writer_email = "writer@example.org"
    request("POST", f"{b}/users", {"email": writer_email, "password": password})
    writer = (login(b, writer_email, password) or {}).get("access_token")

    direct = EventStream(a, "/events", token)
    direct.close()
    check("an instance answers GET /events with 200 text/event-stream and X-Accel-Buffering: no",
          direct.status == 200 and direct.header("content-type").startswith("text/event-stream")
          and {v.lower() for v in direct.headers.get("x-accel-buffering", [])} == {"no"},
          (direct.status, direct.headers))

    # Browsers offer HTTP/2, and an EventSource opens with the head of the response: it must
    # come at once whatever nginx picks (over HTTP/2 nginx would hold it for a first byte).
    curl = shutil.which("curl")
    got = subprocess.run([curl, "-s", "--http2", "--cacert", certificate, "--max-time", "3", "-o", "/dev/null",
                          "-w", "%{http_version} %{http_code} %{time_starttransfer}",
                          "-H", f"Authorization: Bearer {token}", f"{proxy}/events"],
                         capture_output=True, text=True).stdout.split() if curl else []
    version, status, seconds = got if len(got) == 3 else (None, None, "0")
    check(f"a client offering HTTP/2 as browsers do (curl --http2) gets GET /events's head through nginx at once "
          f"(HTTP/{version}, {float(seconds) * 1000:.0f} ms)",
          status == "200" and 0 < float(seconds) < 1, got or "curl is missing")

    stream = EventStream(proxy_a, "/events", token)
    try:
        ms = round((stream.headers_at - stream.opened) * 1000)
        check(f"GET /events through nginx is 200 text/event-stream, its head at once ({ms} ms)",
              stream.status == 200 and stream.header("content-type").startswith("text/event-stream")
              and ms < 1000, (stream.status, stream.headers, ms))

        latencies = []
        for n in range(3):
            sent = time.monotonic()
            status, created = request("POST", f"{b}/posts", {"title": f"live {n}", "content": "through B"},
                                      token=writer)
            found = status == 201 and stream.wait_for(post_event(created["id"]), 3)
            latencies.append(round((found[0] - sent) * 1000) if found else None)
            time.sleep(0.1)
        check("posts written through B reach a subscriber of A through nginx within 1 s: "
              + ", ".join(f"{ms} ms" for ms in latencies),
              all(ms is not None and ms < 1000 for ms in latencies), latencies)

        # Votes are the smallest events (some 40 bytes of data): a proxy that buffered the stream
        # would hold them until its buffer filled, or the stream ended.
        latencies = []
        for n in range(4):
            seen = len(stream.events)
            sent = time.monotonic()
            status, _ = request("POST", f"{b}/vote", {"post_id": post_id, "dir": 1 - n % 2}, token=writer)
            found = stream.wait_for(post_event(post_id, "vote"), 3, after=seen)
            latencies.append(round((found[0] - sent) * 1000) if status in (200, 201) and found else None)
        check("through nginx each of 4 small events (votes) arrives before the next write, unbuffered: "
              + ", ".join(f"{ms} ms" for ms in latencies),
              all(ms is not None and ms < 500 for ms in latencies), latencies)

        status, ticket = request("POST", f"{proxy}/events/ticket", token=token)
        value = (ticket or {}).get("ticket") if status == 201 else None
        check("POST /events/ticket through nginx is 201 with a ticket", value, (status, ticket))
        by_ticket = EventStream(proxy, f"/events?ticket={value}")
        try:
            sent = time.monotonic()
            status, created = request("POST", f"{a}/posts", {"title": "live by ticket", "content": "through A"},
                                      token=writer)
            found = by_ticket.status == 200 and status == 201 and by_ticket.wait_for(post_event(created["id"]), 3)
            ms = round((found[0] - sent) * 1000) if found else None
            check(f"GET /events?ticket= through nginx streams: a post written through A arrives ({ms} ms)",
                  ms is not None and ms < 1000, (by_ticket.status, by_ticket.headers, status))
        finally:
            by_ticket.close()
        again = EventStream(proxy, f"/events?ticket={value}")
        again.close()
        check("the spent ticket through nginx is 401", again.status == 401, again.status)

        # Nothing more is written: the stream is idle from its last event on. nginx in front of A
        # closes a response after TEST_READ_TIMEOUT s without a byte; the comments must bridge it.
        last = stream.events[-1][0] if stream.events else stream.headers_at
        time.sleep(max(0.0, last + TEST_READ_TIMEOUT + 1.5 - time.monotonic()))
        open_for = time.monotonic() - last
        arrivals = [stream.headers_at] + stream.arrivals + [time.monotonic()]
        silence = max(later - earlier for earlier, later in zip(arrivals, arrivals[1:]))
        comments = sum(1 for at in stream.comments if at > last)
        check(f"an idle stream through nginx outlives its proxy_read_timeout ({TEST_READ_TIMEOUT} s in the "
              f"test's site): open {open_for:.1f} s after its last event, {comments} keep-alive comment(s), "
              f"longest silence {silence:.1f} s",
              stream.closed_at is None and comments >= 1 and silence < TEST_READ_TIMEOUT,
              (stream.closed_at, comments, silence))
    finally:
        stream.close()


def unit_values():
    """The [Service] settings of deploy/social-api@.service: {key: [value, ...]}."""
    values, section = {}, None
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                values.setdefault(key, []).append(value)
    return values


def size_in_bytes(value):
    """A systemd size (`768M`, `1G`, plain bytes); None for anything else (`infinity`)."""
    found = re.fullmatch(r"(\d+)([KMGT]?)", value)
    return int(found.group(1)) * 1024 ** " KMGT".index(found.group(2) or " ") if found else None


def unit_checks():
    """The unit's resource limits and hardening, read from the file; `systemd-analyze verify`
    passes it when systemd is installed (with ExecStart naming the binary under test)."""
    values = unit_values()
    setting = {key: found[-1] for key, found in values.items()}
    high, most = size_in_bytes(setting.get("MemoryHigh", "")), size_in_bytes(setting.get("MemoryMax", ""))
    check(f"the unit bounds each instance's memory: MemoryHigh={setting.get('MemoryHigh')} below "
          f"MemoryMax={setting.get('MemoryMax')}", high and most and high < most, setting)
    tasks = setting.get("TasksMax", "")
    check(f"the unit bounds each instance's tasks: TasksMax={tasks}", tasks.isdigit() and int(tasks) > 0, tasks)
    with open(ENV_EXAMPLE) as f:
        connections = int(re.search(r"^#? *HTTP_MAX_CONNECTIONS=(\d+)", f.read(), re.M).group(1))
    files = setting.get("LimitNOFILE", "")
    check(f"the unit's LimitNOFILE={files} leaves room for HTTP_MAX_CONNECTIONS={connections} and more",
          files.isdigit() and int(files) >= 2 * connections, files)
    hardening = {"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                 "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
                 "MemoryDenyWriteExecute": "yes", "RestrictSUIDSGID": "yes", "ProtectProc": "invisible"}
    missing = {key: setting.get(key) for key, value in hardening.items() if setting.get(key) != value}
    check("the unit keeps its hardening (" + ", ".join(f"{k}={v}" for k, v in hardening.items()) + ")",
          not missing and "@system-service" in values.get("SystemCallFilter", []), missing)
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        print("  systemd-analyze is not installed: the unit is checked as text only")
        return
    with tempfile.TemporaryDirectory() as directory:
        copy = os.path.join(directory, os.path.basename(UNIT))
        with open(UNIT) as f, open(copy, "w") as out:
            out.write(re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={os.path.abspath(BINARY)}", f.read()))
        # Unknown keys and invalid values are warnings: any output is a failure.
        verified = subprocess.run([analyze, "verify", copy], capture_output=True, text=True)
    check("systemd-analyze verify passes the unit without a warning",
          verified.returncode == 0 and not (verified.stdout + verified.stderr).strip(),
          verified.stdout + verified.stderr)


def tls_checks(proxy, plain):
    """HTTPS with the run's certificate (TLS 1.2 or 1.3, HSTS); plain HTTP only redirects to
    HTTPS, but for certbot's challenges."""
    with open(SITE) as f:
        protocols = re.search(r"^\s*ssl_protocols ([^;]*);", f.read(), re.M).group(1).split()
    connection = connection_to(proxy)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        version, hsts = connection.sock.version(), response.headers.get("Strict-Transport-Security", "")
    finally:
        connection.close()
    check(f"HTTPS with the run's certificate: GET /health is 200 over {version} with HSTS "
          f"(the site allows {' and '.join(protocols)})",
          response.status == 200 and version in protocols and set(protocols) == {"TLSv1.2", "TLSv1.3"}
          and hsts.startswith("max-age="), (response.status, version, protocols, hsts))
    moved = {}
    for method, target in [("GET", "/posts?limit=1"), ("POST", "/login"), ("GET", "/events?ticket=abc"),
                           ("GET", "/metrics")]:
        status, headers, _ = send(plain, method, target, headers={"Host": "api.example.org"})
        moved[f"{method} {target}"] = (status, headers.get("Location"))
    wrong = {line: answer for line, answer in moved.items()
             if answer != (301, "https://api.example.org" + line.split(" ", 1)[1])}
    check(f"plain HTTP answers {len(moved)} requests with 301 to the same URL on HTTPS", not wrong, wrong)
    status, headers, _ = send(plain, "GET", "/.well-known/acme-challenge/a-token")
    check("plain HTTP serves certbot's challenges (/.well-known/acme-challenge/) instead of redirecting them",
          status == 404 and not headers.get("Location"), (status, headers.get("Location")))


def shipped_limits():
    """The site's limits: {zone: (requests a second, burst)}, the requests one address may have
    open at once, and the 429's details ({"REJECTED": open at once, "default": rate})."""
    with open(SITE) as f:
        site = f.read()
    rates = dict(re.findall(r"limit_req_zone \S+ zone=(\w+):\S+ rate=(\d+)r/s;", site))
    bursts = dict(re.findall(r"limit_req zone=(\w+) burst=(\d+) nodelay;", site))
    zones = {zone: (int(rate), int(bursts[zone])) for zone, rate in rates.items()}
    open_at_once = int(re.search(r"limit_conn social_api_open (\d+);", site).group(1))
    details = dict(re.findall(r'^\s*(\w+)\s+"([^"]*)";',
                              re.search(r"map \$limit_conn_status \S+ \{(.*?)\}", site, re.S).group(1), re.M))
    return zones, open_at_once, details


def too_many(status, headers, problem, detail):
    """Whether an answer is nginx's 429: problem+json with `detail`, and Retry-After."""
    return (status == 429 and headers.get("Content-Type") == "application/problem+json"
            and (headers.get("Retry-After") or "").isdigit() and int(headers["Retry-After"]) >= 1
            and problem == {"type": "about:blank", "title": "Too Many Requests", "status": 429, "detail": detail})


def until_limited(proxy, source, method, target, body=None):
    """Sends `method target` through nginx from `source`, one request after another, until
    the first 429 (at most 1,000); returns the statuses before it, the seconds they took and
    the 429 (status, headers, body)."""
    statuses, started = [], time.monotonic()
    for _ in range(1000):
        answer = send(proxy, method, target, source, body)
        if answer[0] == 429:
            break
        statuses.append(answer[0])
    return statuses, time.monotonic() - started, answer


def limit_checks(a, proxy, password):
    """nginx's limits per client address at the shipped values: requests past the rate and
    burst, writes past theirs, and requests open at once (event streams) get nginx's 429 as
    problem+json with Retry-After; other addresses, and a freed slot, pass."""
    zones, open_at_once, details = shipped_limits()
    # (zone, client address, request, what the service answers it below the limit)
    cases = [("social_api_requests", "127.0.0.4", ("GET", "/health/live", None), 200),
             ("social_api_writes", "127.0.0.5", ("POST", "/posts", {"title": "x", "content": "y"}), 401)]
    for zone, source, (method, target, body), below in cases:
        rate, burst = zones[zone]
        statuses, seconds, limited = until_limited(proxy, source, method, target, body)
        allowed = burst + 1 + rate * seconds
        check(f"{zone} ({rate}/s, burst {burst}): {len(statuses)} × `{method} {target}` from one address in "
              f"{seconds:.2f} s pass (at most {allowed:.0f}), then nginx's 429 with Retry-After "
              f"{limited[1].get('Retry-After')} and a problem document",
              burst + 1 <= len(statuses) <= allowed + 1 and set(statuses) == {below}
              and too_many(*limited, details["default"]), (statuses[-5:], limited))
    status, _, _ = send(proxy, "GET", "/health/live", "127.0.0.5")
    check("an address past its writes still reads (200)", status == 200, status)

    # Streams from one address on several accounts, each under the service's own cap (5).
    per_account, streams = 4, []
    try:
        for n in range(-(-open_at_once // per_account)):
            email = f"streams{n}@example.org"
            request("POST", f"{a}/users", {"email": email, "password": password})
            token = (login(a, email, password) or {}).get("access_token")
            for _ in range(min(per_account, open_at_once - len(streams))):
                streams.append(EventStream(proxy, "/events", token, source="127.0.0.6"))
        opened = [stream.status for stream in streams]
        limited = send(proxy, "GET", "/health/live", "127.0.0.6")
        elsewhere = send(proxy, "GET", "/health/live", "127.0.0.7")[0]
        check(f"{open_at_once} event streams open from one address through nginx, then its next request "
              f"gets nginx's 429 (Retry-After {limited[1].get('Retry-After')}, a problem document); "
              f"another address's passes",
              opened == [200] * open_at_once and too_many(*limited, details["REJECTED"]) and elsewhere == 200,
              (opened, limited, elsewhere))
        streams.pop().close()
        closed = time.monotonic()
        while (status := send(proxy, "GET", "/health/live", "127.0.0.6")[0]) != 200 \
                and time.monotonic() - closed < 1:
            time.sleep(0.05)
        ms = round((time.monotonic() - closed) * 1000)
        check(f"a stream closed by its client frees its slot in nginx: the next request passes ({ms} ms)",
              status == 200, status)
    finally:
        for stream in streams:
            stream.close()


def access_log_checks(proxy, plain, log_path):
    """After requests with `?ticket=` (HTTPS and plain HTTP), nginx's access log holds no query."""
    secret = "ticket-value-that-must-not-be-logged"
    for base in (proxy, plain):
        send(base, "GET", f"/events?ticket={secret}")
        send(base, "GET", f"/posts?limit=1&ticket={secret}")
    with open(log_path) as f:
        text = f.read()
    lines = text.splitlines()
    fields = [re.match(r'\S+ \[[^\]]+\] "(\S+) (\S*) (\S+)" \d{3} ', line) for line in lines]
    unread = [line for line, found in zip(lines, fields) if not found]
    queries = [found.group(2) for found in fields if found and "?" in found.group(2)]
    streams = sum(1 for found in fields if found and found.group(2) == "/events")
    check(f"nginx's access log ({len(lines)} lines, {streams} of them GET /events) holds no query string "
          "and no ticket",
          lines and not unread and not queries and streams >= 2 and "ticket=" not in text and secret not in text,
          (unread[:3], queries[:3], streams))


def main():
    if not os.path.exists(BINARY):
        sys.exit(f"{BINARY} is missing: run `cargo build --release -p api` first")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    workdir = tempfile.mkdtemp(prefix="nginx-test-")
    database = f"nginx_test_{os.getpid()}"
    host = ADMIN_URL.rsplit("/", 1)[0]
    ports = [free_port(), free_port()]
    upstreams = [f"127.0.0.1:{port}" for port in ports]
    # Each nginx of the run: {name: (upstreams, changes to the shipped site)}. The shipped site
    # in front of both instances; in front of A only with a shorter proxy_read_timeout, for
    # event streams that must be on A and idle longer than nginx waits for a byte; and in front
    # of both with a request rate no client has, for the load during which A is killed.
    sites = {"both": (upstreams, {}),
             "a": (upstreams[:1], {"read_timeout": TEST_READ_TIMEOUT}),
             "load": (upstreams, {"rates": {"social_api_requests": "100000r/s"}})}
    folders, plain_bases, bases, certificates = {}, {}, {}, {}
    for name, (upstream, changes) in sites.items():
        folders[name] = os.path.join(workdir, name)
        os.makedirs(folders[name])
        http_port, https_port = free_port(), free_port()
        certificates[name] = nginx_site.write(folders[name], http_port, https_port, upstream, **changes)
        TLS.load_verify_locations(certificates[name])
        plain_bases[name], bases[name] = f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}"
    proxy, proxy_a, proxy_load, plain = bases["both"], bases["a"], bases["load"], plain_bases["both"]
    psql(f"DROP DATABASE IF EXISTS {database}")
    psql(f"CREATE DATABASE {database}")
    log = open(os.path.join(workdir, "instances.log"), "w")
    # Both start at once on an empty database: the migrations must not race.
    instances = [start_instance(port, f"{host}/{database}", log) for port in ports]
    a, b = (f"http://127.0.0.1:{port}" for port in ports)
    nginx_procs = []
    try:
        unit_checks()
        check("both instances start together on one empty database", wait_healthy(a) and wait_healthy(b),
              open(os.path.join(workdir, "instances.log")).read())
        for folder in folders.values():
            nginx_procs.append(subprocess.Popen([nginx, "-p", folder, "-c",
                                                 os.path.join(folder, "nginx.conf"), "-g", "daemon off;"]))
        check("nginx proxies to the instances over HTTPS", all(wait_healthy(base) for base in bases.values()))
        tls_checks(proxy, plain)

        email, password = "ann@example.org", "correct horse"
        status, _ = request("POST", f"{a}/users", {"email": email, "password": password})
        check("registering through instance A is 201", status == 201, status)
        status, token = request("POST", f"{a}/login", {"username": email, "password": password}, form=True)
        token = (token or {}).get("access_token")
        status, me = request("GET", f"{b}/users/me", token=token)
        check("a token issued by A is accepted by B", status == 200 and me["email"] == email, (status, me))

        status, post = request("POST", f"{a}/posts", {"title": "across instances", "content": "x"}, token=token)
        check("creating a post through A is 201", status == 201, status)
        status, listed = request("GET", f"{b}/posts", token=token)
        check("the post created through A is listed through B",
              status == 200 and any(p["id"] == post["id"] for p in listed), (status, listed))

        wrong = {"username": email, "password": "wrong password"}
        statuses = [request("POST", f"{base}/login", wrong, form=True)[0] for base in (a, b, a, b, a)]
        status, _ = request("POST", f"{b}/login", {"username": email, "password": password}, form=True)
        check("five failures split over A and B lock the account on B (429)",
              statuses == [401] * 5 and status == 429, (statuses, status))

        bob = "bob@example.org"
        request("POST", f"{a}/users", {"email": bob, "password": password})
        # One guessing client, many emails, each request forging a different X-Forwarded-For:
        # nginx appends the real address, the service believes only what nginx added.
        statuses = [login_from("127.0.0.2", proxy, f"guess{n}@example.org", "a guess", f"203.0.113.{n}")
                    for n in range(ADDRESS_LIMIT)]
        locked = login_from("127.0.0.2", proxy, bob, password, "203.0.113.99")
        other = login_from("127.0.0.3", proxy, bob, password, "203.0.113.7")
        check(f"through nginx, {ADDRESS_LIMIT} failures from one client address lock that address only",
              statuses == [401] * ADDRESS_LIMIT and locked == 429 and other == 200, (statuses, locked, other))

        status, problem = request("POST", f"{proxy}/posts", {"title": "x", "content": "y" * (1 << 20)}, token=token)
        check("nginx refuses a body over 1 MiB with a problem document",
              status == 413 and problem and problem.get("status") == 413, (status, problem))
        # A page served through nginx on a port of its own (not 80 or 443) calling the API:
        # the browser's Origin carries the port, so nginx must pass the port on in Host.
        status, _ = request("POST", f"{proxy}/users", {"email": "same@example.org", "password": password},
                            headers={"Origin": proxy})
        check("a same-origin POST through nginx on a non-default port passes CORS (201)", status == 201, status)
        status, _ = request("POST", f"{proxy}/users", {"email": "other@example.org", "password": password},
                            headers={"Origin": "http://127.0.0.1:1"})
        check("a foreign origin through nginx is refused in production (403)", status == 403, status)
        status, body = raw_get(a, "/metrics")
        check("an instance serves /metrics itself", status == 200 and METRIC in body, status)
        direct = {target: raw_get(a, target) for target in METRICS_SPELLINGS}
        print("  the instance itself: " + ", ".join(f"{t} {s}{' (metrics)' if METRIC in b else ''}"
                                                    for t, (s, b) in direct.items()))
        through = {target: raw_get(proxy, target) for target in METRICS_SPELLINGS}
        exposed = {t: s for t, (s, b) in through.items() if s not in (403, 404) or METRIC in b}
        check(f"nginx exposes /metrics in none of {len(METRICS_SPELLINGS)} spellings (403 or 404)",
              not exposed, exposed)
        check(f"nginx closes idle upstream connections before an instance does ({SERVICE_IDLE_TIMEOUT} s)",
              upstream_keepalive_timeout() < SERVICE_IDLE_TIMEOUT, upstream_keepalive_timeout())

        conditional_checks(a, b, proxy, token, post["id"])
        session_checks(a, b, proxy, password, post["id"])
        event_checks(a, b, proxy, proxy_a, token, password, post["id"], certificates["both"])
        limit_checks(a, proxy, password)
        access_log_checks(proxy, plain, nginx_site.access_log(folders["both"]))

        url = f"{proxy_load}/posts/{post['id']}"
        killer = threading.Timer(2.0, lambda: instances[0].send_signal(signal.SIGKILL))
        killer.start()
        total, failed = get_load(url, token, seconds=6)
        killer.join()
        check(f"killing A during a GET load through nginx (no client's rate) fails none of {total} requests",
              total > 0 and not failed, failed[:10])
    finally:
        for process in instances + nginx_procs:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        log.close()
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        shutil.rmtree(workdir, ignore_errors=True)

    passed = sum(1 for _, ok in results if ok)
    print(f"nginx: {passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)


if __name__ == "__main__":
    main()
