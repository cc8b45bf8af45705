#!/usr/bin/env python3
"""Benchmark: the service beside the FastAPI peer and beside PostgreSQL's own limit.

    tests/bench/run            # full run (about 26 minutes on 2 cores)
    tests/bench/run --short    # the CI smoke run: small seed, seconds-long loads

It creates fresh databases, seeds them with ../shared/peers/seed.sql (SQLite: seed_sqlite.py),
starts the release build of `api` and the FastAPI peer, loads each endpoint of both in
turn with wrk (warm-up, then measured rounds, alternating), runs pgbench on the SQL the
list endpoint sends and on the fastest one-statement formulation, measures startup time,
peak RSS, behaviour under a login storm, live events (1,000 subscribers of GET /events while
posts are written at 100 a second), what the write limit costs writes (on beside off, from one
account and from many) and growth from 10k to 1M posts, and writes a Markdown
table to stdout and target/bench/results.md (raw figures: results.json).

The figures are not assertions: the exit status is non-zero only when the harness itself
breaks (a server does not start, a seed fails, every answer of a load is an error, ...).
"""

import argparse
import array
import datetime as dt
import hashlib
from http.client import HTTPConnection
import json
import math
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SHARED = Path(os.environ.get("BENCH_SHARED_DIR", ROOT.parent / "shared"))
SEED_SQL = SHARED / "peers" / "seed.sql"
PEER_RUN = SHARED / "peers" / "fastapi" / "run.sh"
LUA = HERE / "wrk" / "bench.lua"
PGBENCH_DIR = HERE / "pgbench"
OUT = ROOT / "target" / "bench"

PGHOST = os.environ.get("PGHOST", "127.0.0.1")
PGPORT = os.environ.get("PGPORT", "5432")
PGUSER = os.environ.get("PGUSER", "postgres")
PG_LOG = Path(os.environ.get("BENCH_PG_LOG", "/var/log/postgresql/postgresql-15-main.log"))
PASSWORD = "password123"  # every seed user's password
SEED_USER = 1             # the caller of the GET loads: seed1@example.org

FAILURES: list[str] = []  # harness breakages; any makes the exit status 1


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def find_tool(name: str, *extra: str) -> str | None:
    for candidate in (shutil.which(name), *extra):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def run(cmd, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, **kw)


# ---------------------------------------------------------------- PostgreSQL

def pg_url(db: str, scheme: str = "postgres") -> str:
    return f"{scheme}://{PGUSER}@{PGHOST}:{PGPORT}/{db}"


def psql(db: str, *args: str, capture: bool = True, options: str | None = None) -> str:
    cmd = [PSQL, "-h", PGHOST, "-p", PGPORT, "-U", PGUSER, "-d", db, "-X", "-q",
           "-v", "ON_ERROR_STOP=1", *args]
    env = {**os.environ, "PGOPTIONS": options} if options else None
    return run(cmd, capture_output=capture, env=env).stdout or ""


def sql(db: str, statement: str) -> str:
    return psql(db, "-At", "-c", statement).strip()


def fresh_database(db: str) -> None:
    sql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    sql("postgres", f'CREATE DATABASE "{db}"')


def drop_database(db: str) -> None:
    sql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def seed_postgres(db: str, seed: dict, notes: list[str]) -> float:
    """Runs seed.sql. Its owner expression `(g * 7919) % users` overflows PostgreSQL's
    integer past 271,189 posts, so for more posts the copy that runs counts posts in
    bigint: the same rows, computed without overflow.

    The service's triggers record every write in its outbox of live events; a seed is no write
    anyone follows. With them, the default seed took 6.5 times as long (97 s instead of 15 s)
    and left 1.1 million events (165 MB) that the service would trim in the middle of a later
    load. So the seed runs with `session_replication_role = replica` (no triggers fire; seed.sql
    writes consistent rows), and the outbox is emptied after it."""
    started = time.monotonic()
    script = SEED_SQL
    if seed["posts"] * 7919 > 2**31 - 1:
        text = SEED_SQL.read_text()
        patched = text.replace("generate_series(1, :posts)", "generate_series(1::bigint, :posts)")
        if patched == text:
            raise RuntimeError("seed.sql changed: cannot count its posts in bigint")
        script = OUT / "seed-bigint.sql"
        script.write_text(patched)
        notes.append(f"seed.sql overflows integer at {seed['posts']:,} posts: the growth seed ran it "
                     "with `generate_series(1::bigint, :posts)` (target/bench/seed-bigint.sql)")
    psql(db, "-v", f"users={seed['users']}", "-v", f"posts={seed['posts']}",
         "-v", f"votes={seed['votes']}", "-f", str(script),
         options="-c session_replication_role=replica")
    if sql(db, "SELECT to_regclass('events') IS NOT NULL") == "t":
        sql(db, "DELETE FROM events")
    return time.monotonic() - started


def seed_sqlite(path: Path, seed: dict) -> float:
    started = time.monotonic()
    run([sys.executable, str(HERE / "seed_sqlite.py"), str(path), "--users", str(seed["users"]),
         "--posts", str(seed["posts"]), "--votes", str(seed["votes"])], capture_output=True)
    return time.monotonic() - started


# ---------------------------------------------------------------- servers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port: int, method: str, path: str, body: bytes | None = None,
         headers: dict | None = None, timeout: float = 120) -> tuple[int, bytes]:
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def get_page(port: int, path: str, token: str) -> tuple[list[int], str | None]:
    """GET a page of posts: the ids on it and the path of its `Link: <…>; rel="next"`, if any."""
    conn = HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        body, link = resp.read(), resp.getheader("Link")
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"GET {path} answered {resp.status}: {body[:300]!r}")
    ids = [post["id"] for post in json.loads(body)]
    m = re.fullmatch(r'\s*<([^>]+)>\s*;\s*rel="?next"?\s*', link or "")
    return ids, m.group(1) if m else None


def login(port: int, email: str) -> str:
    body = urllib.parse.urlencode({"username": email, "password": PASSWORD}).encode()
    status, data = http(port, "POST", "/login", body,
                        {"Content-Type": "application/x-www-form-urlencoded"})
    if status != 200:
        raise RuntimeError(f"login of {email} on :{port} answered {status}: {data[:200]!r}")
    return json.loads(data)["access_token"]


def register(port: int, email: str) -> None:
    body = json.dumps({"email": email, "password": PASSWORD}).encode()
    status, data = http(port, "POST", "/users", body, {"Content-Type": "application/json"})
    if status != 201:
        raise RuntimeError(f"registering {email} on :{port} answered {status}: {data[:200]!r}")


def proc_cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) process PID has used, in seconds."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid: int, key: str) -> int:
    """A kB figure (VmHWM, VmRSS) of /proc/PID/status, 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """A server process (and its children, in its own process group)."""

    def __init__(self, name: str, label: str, cmd: list[str], env: dict, cwd: Path | None = None):
        self.name, self.label, self.cmd, self.cwd = name, label, cmd, cwd
        self.port = free_port()
        self.env = {**os.environ, **env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.proc: subprocess.Popen | None = None
        self.logfile = OUT / "logs" / f"{name}.log"

    def start(self, timeout: float = 60) -> float:
        """Starts the server; returns the seconds from spawn to the first healthy /health."""
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.logfile, "ab")
        out.write(f"\n==== start {time.strftime('%H:%M:%S')}\n".encode())
        out.flush()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=self.cwd, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        out.close()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode} on start; "
                                   f"see {self.logfile}")
            try:
                status, _ = http(self.port, "GET", "/health", timeout=2)
                if status == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            if time.monotonic() - t0 > timeout:
                self.stop()
                raise RuntimeError(f"{self.label} not healthy after {timeout:.0f} s; see {self.logfile}")
            time.sleep(0.002)

    def stop(self) -> None:
        if not self.proc or self.proc.poll() is not None:
            self.proc = None
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        self.proc = None

    def pids(self) -> list[int]:
        if not self.proc:
            return []
        group = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    if int(fields[2]) == self.proc.pid:  # process group id
                        group.append(int(entry))
                except (OSError, IndexError, ValueError):
                    pass
        return group or [self.proc.pid]

    def reset_peak(self) -> None:
        """Resets VmHWM to the current RSS (Linux: `echo 5 > /proc/PID/clear_refs`)."""
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass

    def peak_kb(self) -> int:
        """Sum over the process group of each process's VmHWM (for one process: its peak)."""
        return sum(proc_status(pid, "VmHWM") for pid in self.pids())

    def token(self, email: str = f"seed{SEED_USER}@example.org") -> str:
        return login(self.port, email)


def ours(name: str, label: str, database_url: str, binary: str = "api") -> Server:
    env = {"DATABASE_URL": database_url, "SECRET_KEY": secrets.token_hex(32),
           "BCRYPT_COST": "12", "REGISTER_MAX_PER_ADDRESS": "0", "WRITES_PER_MINUTE": "0",
           "RUST_LOG": os.environ.get("BENCH_RUST_LOG", "warn")}
    return Server(name, label, [str(OUT / "bin" / binary)], env, cwd=OUT)


def baseline(cfg, backend: str, database_url: str) -> list[Server]:
    """The `--baseline` build on a database of its own, or nothing. Its first start migrates
    it to the baseline's own schema: an older build cannot be trusted with a schema it does
    not know (a column it does not fill, a trigger it does not expect), and a newer one's
    migrations are refused by an older build. The caller seeds it as it seeds ours."""
    if not cfg.baseline:
        return []
    server = ours(f"baseline-{backend.lower()}", f"baseline ({backend})", database_url, "baseline")
    server.start()
    server.stop()
    return [server]


def selected(cfg, keys: list) -> list:
    """The loads (or the keys of the extra loads) `--loads` keeps; all without it."""
    if not cfg.loads:
        return keys
    return [k for k in keys if (k if isinstance(k, str) else k.key) in cfg.loads]


def peer(db: str) -> Server:
    env = {"DATABASE_URL": pg_url(db, "postgresql"), "WORKERS": "2"}
    return Server("peer", "peer (PG)", [str(PEER_RUN), "--no-access-log"], env)


def startup_times(server: Server, tries: int) -> list[float]:
    times = []
    for _ in range(tries):
        times.append(server.start())
        server.stop()
    return times


# ---------------------------------------------------------------- wrk loads

class Load:
    """A wrk load. A cursor load (`cursor_depth` set) requests the page at that depth of its
    listing (`search`, or every post) by cursor: the harness takes the cursor, per server,
    from the `Link` of the page before it (`cursor_path`), and loads the path it links to.
    A load of many `accounts` writes as accounts registered for each run, in turn."""

    def __init__(self, key: str, title: str, scenario: str, path: str,
                 connections: int | None = None, voter: bool = False,
                 cursor_depth: int = 0, search: str | None = None, accounts: int = 1):
        self.key, self.title, self.scenario, self.path = key, title, scenario, path
        self.connections, self.voter = connections, voter
        self.cursor_depth, self.search = cursor_depth, search
        self.accounts = accounts

    def shown(self, depth: int | None = None) -> str:
        """The title, with the depth a cursor load ran at (`{depth}` in its title)."""
        if not self.cursor_depth:
            return self.title
        return self.title.format(depth=f"{depth if depth is not None else self.cursor_depth:,}")


# How deep the cursor pages lie: post 50,000 of the listing (the `skip` load's page), and
# match 500 of search=abc (its 51st page; seed.sql's 100,000 posts hold 672 matches seed1
# may see). A seed too small for that depth gets its deepest full page (depth_for).
CURSOR_DEPTH = 50_000
SEARCH_CURSOR_DEPTH = 500
SEARCH = "abc"

LOADS = [
    Load("list", "GET /posts?limit=10", "get", "/posts?limit=10"),
    Load("id", "GET /posts/{id}", "get_id", "/posts/1"),
    Load("search", f"GET /posts?search={SEARCH}", "get", f"/posts?search={SEARCH}"),
    Load("skip", f"GET /posts?skip={CURSOR_DEPTH}&limit=10", "get",
         f"/posts?skip={CURSOR_DEPTH}&limit=10"),
    Load("cursor", "GET /posts?cursor=… (depth {depth})", "get", "/posts?cursor=…",
         cursor_depth=CURSOR_DEPTH),
    Load("search_cursor", f"GET /posts?search={SEARCH}&cursor=… (match {{depth}})", "get",
         f"/posts?search={SEARCH}&cursor=…", cursor_depth=SEARCH_CURSOR_DEPTH, search=SEARCH),
    Load("create", "POST /posts", "create", "/posts"),
    Load("vote", "POST /vote (add and remove)", "vote", "/vote", voter=True),
]
LOAD_BY_KEY = {l.key: l for l in LOADS}
LIST_C256 = Load("list_c256", "GET /posts?limit=10, -c256", "get", "/posts?limit=10",
                 connections=256)


def wrk(server: Server, load: Load, token: str, seconds: int, cfg, connections=None,
        threads=None, tag: str = "", path: str | None = None,
        tokens: list[str] | None = None) -> subprocess.Popen:
    """Starts wrk; `finish_wrk` collects its JSON summary. `tokens`: a load of many accounts'."""
    threads = threads or cfg.threads
    connections = max(connections or load.connections or cfg.connections, threads)
    out = OUT / "runs" / f"{server.name}-{load.key}{tag}-{time.monotonic_ns()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BENCH_SCENARIO": load.scenario, "BENCH_TOKEN": token,
           "BENCH_TOKENS": ",".join(tokens or []),
           "BENCH_POSTS": str(cfg.seed_posts), "BENCH_USERS": str(cfg.seed_users),
           "BENCH_THREADS": str(threads), "BENCH_CONNECTIONS": str(connections),
           "BENCH_OUT": str(out)}
    cmd = [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
           "-s", str(LUA), f"http://127.0.0.1:{server.port}{path or load.path}"]
    logf = open(OUT / "logs" / "wrk.log", "ab")
    logf.write(f"\n==== {' '.join(cmd)}  ({server.label})\n".encode())
    logf.flush()
    p = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT)
    logf.close()
    p.out_path = out  # type: ignore[attr-defined]
    return p


def finish_wrk(p: subprocess.Popen, what: str) -> dict:
    p.wait()
    try:
        r = json.loads(Path(p.out_path).read_text())  # type: ignore[attr-defined]
    except (OSError, ValueError):
        FAILURES.append(f"{what}: wrk exited with {p.returncode} and no summary (see target/bench/logs/wrk.log)")
        return {"requests": 0, "duration_us": 1, "errors": 0, "non2xx": 0,
                "p50_us": 0, "p99_us": 0, "rps": 0.0}
    r["errors"] = r["connect"] + r["read"] + r["write"] + r["timeout"]
    r["non2xx"] = r["status"]
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    # Answers that all failed mean the harness asked wrongly (a token, a body, a path);
    # no answer at all within the run is a figure (a server too slow), not a breakage.
    if r["requests"] > 0 and r["non2xx"] >= r["requests"]:
        FAILURES.append(f"{what}: every answer was non-2xx ({r['requests']} requests); "
                        "see target/bench/logs/")
    return r


def measure(server: Server, load: Load, seconds: int, cfg, connections=None, reset=True,
            path: str | None = None) -> dict:
    tokens = load_tokens(server, load)
    if reset:
        server.reset_peak()
    r = finish_wrk(wrk(server, load, tokens[0], seconds, cfg, connections, path=path,
                       tokens=tokens if len(tokens) > 1 else None),
                   f"{server.label} {load.shown()}")
    r["peak_kb"] = server.peak_kb()
    settle(server)
    return r


def settle(server: Server, limit: float = 120) -> None:
    """Waits until the server answers /health again: a server that queued more requests than
    it answered during a run works them off here, not during the next server's run."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            if http(server.port, "GET", "/health", timeout=limit)[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{server.label} did not answer /health within {limit:.0f} s after a run")


_voters = 0
_tokens: dict[tuple[str, int], tuple[float, str]] = {}


def load_token(server: Server, load: Load) -> str:
    """seed1's token, renewed after 20 minutes (they last 30); a run of votes gets a user of
    its own, who has voted nothing."""
    global _voters
    if load.voter:
        _voters += 1
        email = f"voter{_voters}-{secrets.token_hex(3)}@bench.example.org"
        register(server.port, email)
        return server.token(email)
    key = (server.label, server.port)
    if key not in _tokens or time.monotonic() - _tokens[key][0] > 1200:
        _tokens[key] = (time.monotonic(), server.token())
    return _tokens[key][1]


_writers = 0


def load_tokens(server: Server, load: Load) -> list[str]:
    """The tokens a run of the load writes with: load_token's, or for a load of many accounts
    that many accounts of the run's own, registered now: a vote's accounts must have voted
    nothing, and creates get theirs alike, so that both write from as many fresh accounts."""
    global _writers
    if load.accounts <= 1:
        return [load_token(server, load)]
    tokens = []
    for _ in range(load.accounts):
        _writers += 1
        email = f"writer{_writers}-{secrets.token_hex(3)}@bench.example.org"
        register(server.port, email)
        tokens.append(server.token(email))
    return tokens


def forget_token(server: Server) -> None:
    """Drops the server's cached token: a seed that empties users ends its session."""
    _tokens.pop((server.label, server.port), None)


def login_storm(server: Server, seconds: int, cfg) -> tuple[dict, dict]:
    """GET /posts/{id} (-c connections) while 32 clients log in continuously."""
    id_load, login_load = LOADS[1], Load("login", "POST /login", "login", "/login")
    token = load_token(server, id_load)
    server.reset_peak()
    logins = wrk(server, login_load, "", seconds + 2, cfg, connections=cfg.login_clients,
                 threads=1, tag="-storm")
    time.sleep(1)  # the logins are under way before the measured GETs start
    gets = wrk(server, id_load, token, seconds, cfg, tag="-storm")
    g = finish_wrk(gets, f"{server.label} GET /posts/{{id}} during logins")
    lg = finish_wrk(logins, f"{server.label} POST /login during GETs")
    g["peak_kb"] = lg["peak_kb"] = server.peak_kb()
    settle(server)
    server.token()  # a login of its own waits until the logins wrk left behind are hashed
    return g, lg


def combine(runs: list[dict]) -> dict:
    """Measured rounds of one load: req/s over all of them, the median p50/p99, summed errors."""
    if not runs:
        return {}
    total_s = sum(r["duration_us"] for r in runs) / 1e6
    answered = [r for r in runs if r["requests"]] or runs  # latencies of runs with answers
    return {
        "rps": sum(r["requests"] for r in runs) / total_s,
        "p50_ms": statistics.median(r["p50_us"] for r in answered) / 1000,
        "p99_ms": statistics.median(r["p99_us"] for r in answered) / 1000,
        "errors": sum(r["errors"] for r in runs),
        "non2xx": sum(r["non2xx"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "peak_mb": max(r.get("peak_kb", 0) for r in runs) / 1024,
        "runs": runs,
    }


class NoCursor(Exception):
    """A server that gives no cursor (the peer, a build from before cursors): the cursor
    loads are skipped on it, a note rather than a failure."""


NOTES: list[str] = []  # what the loads noticed on the way (skipped loads, ...); in the report


_visible: dict[tuple, int] = {}


def visible_posts(cfg, search: str | None) -> int:
    """How many seed posts seed1 sees (published ones and their own drafts), those whose
    title contains `search` if given: seed.sql's rows, counted here."""
    key = (cfg.seed_posts, cfg.seed_users, search)
    if key not in _visible:
        n = 0
        for g in range(1, cfg.seed_posts + 1):
            if g % 10 == 0 and 1 + (g * 7919) % cfg.seed_users != SEED_USER:
                continue
            if search is None or search.lower() in f"post {g} {hashlib.md5(str(g).encode()).hexdigest()}":
                n += 1
        _visible[key] = n
    return _visible[key]


def depth_for(load: Load, cfg) -> int:
    """The depth of a cursor load's page in this seed: its own depth, or the deepest full page
    when the seed is smaller (0: not even a second full page)."""
    visible = visible_posts(cfg, load.search)
    if visible >= load.cursor_depth + 10:
        return load.cursor_depth
    return max(0, (visible // 10 - 1) * 10)


def cursor_path(server: Server, load: Load, cfg) -> tuple[str, int]:
    """The path of a cursor load's page on `server` and its depth: the `Link` of the page
    before it, asked with `skip` (cursors are signed with the server's own secret, and tied
    to the seed's rows, so each server and seed needs its own). The cursor's page is checked
    against the same page asked with `skip`."""
    if server.name == "peer":
        raise NoCursor("the peer has no cursors")
    depth = depth_for(load, cfg)
    what = f"search={load.search}" if load.search else "the listing"
    if depth < 10:
        raise NoCursor(f"the seed has fewer than 20 posts of {what} seed1 sees: no page by cursor")
    token = load_token(server, LOADS[0])
    query = f"search={load.search}&" if load.search else ""
    _, link = get_page(server.port, f"/posts?{query}skip={depth - 10}&limit=10", token)
    if not link:
        raise NoCursor(f"GET /posts?{query}skip={depth - 10}&limit=10 carries no Link "
                       "(a build without cursors)")
    by_cursor, _ = get_page(server.port, link, token)
    by_skip, _ = get_page(server.port, f"/posts?{query}skip={depth}&limit=10", token)
    if by_cursor != by_skip:
        NOTES.append(f"{server.label}: the page by cursor at depth {depth:,} of {what} "
                     f"({by_cursor}) is not the page by skip ({by_skip})")
    return link, depth


def probe(server: Server, load: Load, cfg, path: str | None = None) -> None:
    """One request of the load's kind by hand first, so that a broken request shows its
    status and body instead of only counts."""
    token = load_token(server, LOADS[0])
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    post = cfg.seed_posts - 1 if cfg.seed_posts % 10 == 0 else cfg.seed_posts
    if load.scenario in ("get", "get_id"):
        path = f"/posts/{post}" if load.scenario == "get_id" else (path or load.path)
        checks = [("GET", path, None, (200,))]
    elif load.scenario == "create":
        checks = [("POST", "/posts", {"title": "Probe", "content": "Probe"}, (201,))]
    elif load.scenario == "vote":
        checks = [("POST", "/vote", {"post_id": post, "dir": 1}, (201, 409)),
                  ("POST", "/vote", {"post_id": post, "dir": 0}, (200,))]
    else:
        return
    for method, path, body, ok in checks:
        data = json.dumps(body).encode() if body is not None else None
        status, answer = http(server.port, method, path, data, auth)
        if status not in ok:
            raise RuntimeError(f"{server.label}: {method} {path} {body or ''} answered {status}: "
                               f"{answer[:300]!r}")


def load_matrix(servers: list[Server], loads: list[Load], cfg, results: dict, section: str) -> None:
    """Each load: warm-up of each server, then `rounds` measured runs alternating servers."""
    for load in loads:
        ready = []
        paths: dict[str, str] = {}
        depths: dict[str, int] = {}
        for s in servers:
            try:
                if load.cursor_depth:
                    paths[s.label], depths[s.label] = cursor_path(s, load, cfg)
                probe(s, load, cfg, paths.get(s.label))
                ready.append(s)
            except NoCursor as why:
                NOTES.append(f"{section}: `{load.key}` ({load.title.split(' (')[0]}) not loaded on "
                             f"{s.label}: {why}")
                log(f"{section}: {load.key}: skipped on {s.label}: {why}")
            except (RuntimeError, OSError) as err:
                FAILURES.append(f"{load.shown()} not loaded: {err}")
                log(f"{section}: {load.shown()}: probe failed, skipped: {err}")
        runs: dict[str, list] = {s.label: [] for s in ready}
        title = lambda s: load.shown(depths.get(s.label))
        for s in ready:
            log(f"{section}: {title(s)} on {s.label}: warm-up {cfg.warmup} s")
            measure(s, load, cfg.warmup, cfg, path=paths.get(s.label))
        for rnd in range(cfg.rounds):
            for s in ready:
                log(f"{section}: {title(s)} on {s.label}: run {rnd + 1}/{cfg.rounds}, {cfg.duration} s")
                runs[s.label].append(measure(s, load, cfg.duration, cfg, path=paths.get(s.label)))
        for s in ready:
            r = results.setdefault(s.label, {})[load.key] = combine(runs[s.label])
            if s.label in depths:
                r["depth"], r["path"] = depths[s.label], paths[s.label]


def storm_matrix(servers: list[Server], cfg, results: dict, section: str) -> None:
    gets: dict[str, list] = {s.label: [] for s in servers}
    logins: dict[str, list] = {s.label: [] for s in servers}
    for s in servers:
        log(f"{section}: login storm on {s.label}: warm-up {cfg.warmup} s")
        login_storm(s, cfg.warmup, cfg)
    for rnd in range(cfg.rounds):
        for s in servers:
            log(f"{section}: login storm on {s.label}: run {rnd + 1}/{cfg.rounds}, {cfg.duration} s")
            g, lg = login_storm(s, cfg.duration, cfg)
            gets[s.label].append(g)
            logins[s.label].append(lg)
    for s in servers:
        results.setdefault(s.label, {})["id_storm"] = combine(gets[s.label])
        results[s.label]["login_storm"] = combine(logins[s.label])


def rss_matrix(servers: list[Server], cfg, results: dict, section: str) -> None:
    """Peak RSS under -c256 of a freshly started server (warm-up, then the measured run),
    so that no earlier load's memory counts."""
    for s in servers:
        s.stop()
        s.start(timeout=120)
        log(f"{section}: {LIST_C256.title} on {s.label}: warm-up {cfg.warmup} s, then {cfg.duration} s")
        measure(s, LIST_C256, cfg.warmup, cfg)
        results.setdefault(s.label, {})["list_c256"] = combine([measure(s, LIST_C256, cfg.duration, cfg, reset=False)])


# ---------------------------------------------------------------- live events

SUBSCRIBERS = HERE / "sse_subscribers.c"
EVENT_WRITER = 2  # seed2 writes the posts; seed1, who sees them, subscribes
EVENT_CONTENT = "A post written while subscribers follow GET /events. " * 4
# Writers, each on a keep-alive connection of its own, writing in turn: 100 posts a second
# hold while a write takes under 80 ms (on a busy machine a PostgreSQL write took 45 ms).
WRITER_THREADS = 8


def raise_open_files(wanted: int) -> int:
    """Raises this process's soft RLIMIT_NOFILE towards `wanted` (the servers and subscribers
    it starts inherit it); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def subscribers_binary() -> Path:
    """sse_subscribers.c, compiled (with the C compiler cargo links with)."""
    out = OUT / "bin" / "sse_subscribers"
    if not out.exists():
        cc = find_tool("cc") or find_tool("gcc") or find_tool("clang")
        if not cc:
            raise RuntimeError("no C compiler (cc) for tests/bench/sse_subscribers.c")
        p = run([cc, "-O2", "-o", str(out), str(SUBSCRIBERS)], capture_output=True, check=False)
        if p.returncode != 0:
            raise RuntimeError(f"cc {SUBSCRIBERS.name} failed: {p.stderr.strip()[-300:]}")
    return out


def write_posts(server: Server, token: str, rate: int, seconds: float, first: int) -> tuple[list, list, list]:
    """POST /posts titled `live N` (N from `first`) at `rate` a second for `seconds`, on a
    fixed schedule (a write that falls behind it is sent at once). Returns, per post, the
    time.monotonic() its request was sent and its answer read, and its status."""
    total = int(rate * seconds)
    sent, answered, status = [0.0] * total, [0.0] * total, [0] * total
    start = time.monotonic() + 0.05
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def writer(k: int) -> None:
        conn = HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            for i in range(k, total, WRITER_THREADS):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                body = json.dumps({"title": f"live {first + i}", "content": EVENT_CONTENT}).encode()
                sent[i] = time.monotonic()
                try:
                    conn.request("POST", "/posts", body=body, headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                    status[i] = resp.status
                except OSError:
                    conn.close()
                    conn = HTTPConnection("127.0.0.1", server.port, timeout=30)
                answered[i] = time.monotonic()
        finally:
            conn.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(WRITER_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sent, answered, status


def percentile(values: list[float], q: float) -> float:
    """`values` sorted; the q-quantile (nearest rank)."""
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def events_load(server: Server, cfg, section: str) -> dict:
    """`cfg.event_subscribers` streams of GET /events on one freshly started instance
    (HTTP_MAX_CONNECTIONS and EVENT_STREAMS_PER_ACCOUNT raised for them) while posts are written at `cfg.event_rate` a second
    through the API: delivery latency (the write's request sent to the event's arrival at each
    subscriber), the instance's RSS with the subscribers attached, and GET /posts?limit=10
    (wrk, as the list load) without them, with them attached, and with them attached while
    posts are delivered (a second run of writes, whose latencies are reported apart)."""
    subs, rate = cfg.event_subscribers, cfg.event_rate
    list_load = LOADS[0]
    # The instance: the streams, wrk's connections, the writers, the pools; the harness: the
    # subscribers' sockets, in child processes that inherit its limit.
    limit = raise_open_files(subs + cfg.connections + 256)
    if limit < subs + cfg.connections + 256:
        subs = max(1, limit - cfg.connections - 256)
        NOTES.append(f"{section}: events: the open-file limit ({limit}) allows {subs} subscribers only")
    saved_env = dict(server.env)
    # Streams take at most half the connections, and these are all one account's.
    server.env["HTTP_MAX_CONNECTIONS"] = str(2 * (subs + cfg.connections + 128))
    server.env["EVENT_STREAMS_PER_ACCOUNT"] = str(subs)
    server.stop()
    server.start(timeout=120)
    children: list[subprocess.Popen] = []
    try:
        token = load_token(server, list_load)
        writer = server.token(f"seed{EVENT_WRITER}@example.org")
        log(f"{section}: events on {server.label}: list without subscribers, warm-up {cfg.warmup} s, "
            f"then {cfg.duration} s")
        measure(server, list_load, cfg.warmup, cfg)
        without = measure(server, list_load, cfg.duration, cfg)
        rss_before = proc_status(server.proc.pid, "VmRSS")

        # One process reads every stream: about 3 µs of CPU an event (the kernel's receiving
        # included), some 0.3 of a core at 1,000 subscribers and 100 posts a second.
        binary = subscribers_binary()
        shares = [subs]
        log(f"{section}: events on {server.label}: {subs} subscribers")
        outs = [OUT / "runs" / f"{server.name}-events-{k}.bin" for k in range(len(shares))]
        for share, out in zip(shares, outs):
            children.append(subprocess.Popen(
                [str(binary), str(server.port), str(share), str(out)],
                env={**os.environ, "BENCH_TOKEN": token}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=open(OUT / "logs" / "sse_subscribers.log", "ab"), text=True))
        connected = failed = 0
        attach_started = time.monotonic()
        for child in children:
            line = child.stdout.readline().split()  # type: ignore[union-attr]
            if len(line) != 3 or line[0] != "ready":
                raise RuntimeError(f"sse_subscribers answered {line!r}; see target/bench/logs/sse_subscribers.log")
            connected, failed = connected + int(line[1]), failed + int(line[2])
        attach_s = time.monotonic() - attach_started
        time.sleep(1)
        rss_attached = proc_status(server.proc.pid, "VmRSS")
        log(f"{section}: events on {server.label}: {connected} attached in {attach_s:.1f} s; "
            f"list with them attached, {cfg.duration} s")
        attached = measure(server, list_load, cfg.duration, cfg)

        log(f"{section}: events on {server.label}: {rate} posts/s for {cfg.event_seconds} s")
        server.reset_peak()
        cpu_before = proc_cpu_seconds(server.proc.pid)
        quiet = write_posts(server, writer, rate, cfg.event_seconds, 0)
        time.sleep(1)
        cpu_spent = proc_cpu_seconds(server.proc.pid) - cpu_before
        peak = server.peak_kb()
        deliveries = connected * sum(1 for status in quiet[2] if status == 201)
        if deliveries:
            NOTES.append(f"{section}: events on {server.label}: {cpu_spent:.2f} s of the instance's CPU "
                         f"for {deliveries:,} deliveries ({len(quiet[0])} writes included): "
                         f"{cpu_spent / deliveries * 1e6:.2f} µs a delivery at most")
        log(f"{section}: events on {server.label}: {rate} posts/s during the list load, {cfg.duration} s")
        load = wrk(server, list_load, token, cfg.duration, cfg, tag="-events")
        busy = write_posts(server, writer, rate, cfg.duration, len(quiet[0]))
        during = finish_wrk(load, f"{server.label} GET /posts?limit=10 during event deliveries")
        settle(server)
        time.sleep(2)  # the last deliveries
        sent = quiet[0] + busy[0]
        answered = quiet[1] + busy[1]
        statuses = quiet[2] + busy[2]
        total, n_quiet = len(sent), len(quiet[0])
        counts: dict = {}
        arrivals = array.array("d")
        for child, share, out in zip(children, shares, outs):
            child.stdin.write(f"stop {total}\n")  # type: ignore[union-attr]
            child.stdin.flush()  # type: ignore[union-attr]
            summary = json.loads(child.stdout.readline())  # type: ignore[union-attr]
            child.wait(timeout=60)
            for key, value in summary.items():
                counts[key] = counts.get(key, 0) + value
            with open(out, "rb") as f:
                arrivals.fromfile(f, share * total)
            out.unlink()
        # The list without subscribers again, now that they are gone: the figure "without" is
        # both runs, one on either side of those with them.
        log(f"{section}: events on {server.label}: list without subscribers again, {cfg.duration} s")
        time.sleep(1)
        without = combine([without, measure(server, list_load, cfg.duration, cfg)])
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        server.env = saved_env
        server.stop()
        server.start(timeout=120)

    written = [i for i in range(total) if statuses[i] == 201]
    lat_quiet: list[float] = []
    lat_busy: list[float] = []
    after_answer: list[float] = []  # from the write's answer read, for the quiet run's posts
    missing = 0
    for row in range(subs):
        base = row * total
        for i in written:
            at = arrivals[base + i]
            if at != at:  # NaN: never arrived
                missing += 1
            elif i < n_quiet:
                lat_quiet.append((at - sent[i]) * 1000)
                after_answer.append((at - answered[i]) * 1000)
            else:
                lat_busy.append((at - sent[i]) * 1000)
    lat_quiet.sort()
    lat_busy.sort()
    after_answer.sort()
    writes = sorted((answered[i] - sent[i]) * 1000 for i in written if i < n_quiet)
    span = (max(sent[:n_quiet]) - min(sent[:n_quiet])) if n_quiet > 1 else 0
    if not lat_quiet:
        FAILURES.append(f"{server.label} events: no event reached any subscriber "
                        f"({counts.get('connected', 0)} connected, {len(written)} posts written)")
    return {
        "subscribers": subs, "connected": connected, "failed": failed, "attach_s": attach_s,
        "rate": (n_quiet - 1) / span if span else 0.0, "seconds": cfg.event_seconds,
        "posts": n_quiet, "write_errors": total - len(written),
        "expected": subs * len(written), "missing": missing,
        "p50_ms": percentile(lat_quiet, 0.5), "p99_ms": percentile(lat_quiet, 0.99),
        "max_ms": lat_quiet[-1] if lat_quiet else float("nan"),
        "write_p50_ms": percentile(writes, 0.5), "write_p99_ms": percentile(writes, 0.99),
        "answer_p50_ms": percentile(after_answer, 0.5), "answer_p99_ms": percentile(after_answer, 0.99),
        "busy_p50_ms": percentile(lat_busy, 0.5), "busy_p99_ms": percentile(lat_busy, 0.99),
        "rss_before_mb": rss_before / 1024, "rss_attached_mb": rss_attached / 1024,
        "peak_mb": peak / 1024,
        "list_without": without["rps"], "list_attached": attached["rps"], "list_busy": during["rps"],
        "list_p99_without_ms": without["p99_ms"], "list_p99_attached_ms": attached["p99_us"] / 1000,
        "list_p99_busy_ms": during["p99_us"] / 1000,
        **{f"stream_{k}": v for k, v in counts.items() if k not in ("connected", "failed")},
    }


def has_events(server: Server) -> bool:
    """Whether the server answers GET /events with a stream (a build from before live events
    answers 404)."""
    conn = HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", "/events", headers={"Authorization": f"Bearer {load_token(server, LOADS[0])}"})
        return conn.getresponse().status == 200  # the head only: the stream never ends
    finally:
        conn.close()


def events_matrix(servers: list[Server], cfg, results: dict, section: str) -> None:
    """The live-events load on each build of ours that has it (not the peer; not a baseline
    from before GET /events)."""
    for s in servers:
        if s.name == "peer":
            continue
        if not has_events(s):
            NOTES.append(f"{section}: {s.label} has no GET /events: no live-events load")
            continue
        try:
            results.setdefault(s.label, {})["events"] = events_load(s, cfg, section)
        except (RuntimeError, OSError, ValueError) as err:
            FAILURES.append(f"{section}: events on {s.label}: {err}")
            log(f"{section}: events on {s.label}: failed: {err}")


# ---------------------------------------------------------------- the write limit

# WRITES_PER_MINUTE with the limit on: so high that nothing is refused, so that every write
# is counted and none answered 429; beside 0, the limit off. On first in each round.
WRITE_LIMIT_ON = 1_000_000_000
WRITE_LIMIT_MODES = (("on", str(WRITE_LIMIT_ON)), ("off", "0"))


def write_limit_loads(cfg) -> list[Load]:
    """POST /posts and POST /vote from one account (the create and vote loads: seed1's posts,
    a voter of its own per run), and from `cfg.write_accounts`, each request the next's."""
    n = cfg.write_accounts
    return [LOAD_BY_KEY["create"],
            Load("create_accounts", f"POST /posts, {n} accounts", "create", "/posts", accounts=n),
            LOAD_BY_KEY["vote"],
            Load("vote_accounts", f"POST /vote (add and remove), {n} accounts", "vote", "/vote",
                 voter=True, accounts=n)]


def counts_writes(server: Server) -> bool:
    """Whether the server counts writes: a write's answer carries `RateLimit-Policy` only when
    the limit is on (a post of seed1's tells)."""
    token = load_token(server, LOADS[0])
    body = json.dumps({"title": "Probe", "content": "Probe"}).encode()
    conn = HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", "/posts", body=body,
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        answer = resp.read()
    finally:
        conn.close()
    if resp.status != 201:
        raise RuntimeError(f"{server.label}: POST /posts answered {resp.status}: {answer[:300]!r}")
    return resp.getheader("RateLimit-Policy") is not None


def write_limit_load(server: Server, cfg, section: str) -> dict:
    """The write loads (`write_limit_loads`) with the limit on and off: the server restarted
    with each WRITES_PER_MINUTE in turn, on then off, `cfg.rounds` times; after each restart
    each load warms up, then runs (a restart leaves the pool's connections cold), and at the end
    the server is restarted as it was. BCRYPT_COST is 4 meanwhile, on and off alike: every run
    of many accounts registers and logs in its own, two hashes each, which at cost 12 take
    longer than the run itself; no write hashes anything."""
    loads = write_limit_loads(cfg)
    runs: dict = {mode: {load.key: [] for load in loads} for mode, _ in WRITE_LIMIT_MODES}
    saved_env = dict(server.env)
    try:
        for rnd in range(cfg.rounds):
            for mode, per_minute in WRITE_LIMIT_MODES:
                server.env = {**saved_env, "WRITES_PER_MINUTE": per_minute, "BCRYPT_COST": "4"}
                server.stop()
                server.start(timeout=120)
                if counts_writes(server) != (mode == "on"):
                    raise RuntimeError(f"with WRITES_PER_MINUTE={per_minute} a write's answer "
                                       f"{'lacks' if mode == 'on' else 'carries'} RateLimit-Policy")
                for load in loads:
                    probe(server, load, cfg)
                    log(f"{section}: limit {mode}, {load.title} on {server.label}: warm-up "
                        f"{cfg.warmup} s, then run {rnd + 1}/{cfg.rounds}, {cfg.duration} s")
                    measure(server, load, cfg.warmup, cfg)
                    runs[mode][load.key].append(measure(server, load, cfg.duration, cfg))
    finally:
        server.env = saved_env
        server.stop()
        server.start(timeout=120)
    result: dict = {"writes_per_minute": {mode: int(n) for mode, n in WRITE_LIMIT_MODES},
                    "loads": {}}
    for load in loads:
        off, on = combine(runs["off"][load.key]), combine(runs["on"][load.key])
        result["loads"][load.key] = {
            # the scenario's one-account load is the endpoint's plain load (create, vote)
            "endpoint": LOAD_BY_KEY[load.scenario].title, "accounts": load.accounts,
            "off": off, "on": on,
            "rps_on_off": ratio(on["rps"], off["rps"]),
            "p99_on_off": ratio(on["p99_ms"], off["p99_ms"])}
    return result


def write_limit_matrix(servers: list[Server], cfg, results: dict, section: str) -> None:
    """The write-limit load on each build of ours that is measured (not the peer, which has no
    limit; not a baseline, which may predate it)."""
    for s in servers:
        if not s.name.startswith("ours"):
            continue
        try:
            results.setdefault(s.label, {})["write_limit"] = write_limit_load(s, cfg, section)
        except (RuntimeError, OSError, ValueError) as err:
            FAILURES.append(f"{section}: write limit on {s.label}: {err}")
            log(f"{section}: write limit on {s.label}: failed: {err}")


# ---------------------------------------------------------------- SQL capture and pgbench

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
# The event feed's own statements, which every instance sends in the background whatever the
# requests do (it reads the `events` outbox and waits for its writers once a second, listens,
# and notifies after a write in a transaction of its own): a capture leaves out each of them,
# with the rest of its transaction.
FEED_STATEMENT = re.compile(r"\bevents\b|\bevents_in_flight\b|\bpg_notify\b|^\s*(?:LISTEN|NOTIFY)\b",
                            re.I)
TRANSACTION_BEGIN = re.compile(r"^\s*(?:BEGIN|START)\b", re.I)
TRANSACTION_END = re.compile(r"^\s*(?:COMMIT|ROLLBACK|END)\b", re.I)
# The backend's process id in the log line prefix (`%m [%p] %q%u@%d `).
LOG_PID = re.compile(r"^\S+ \S+ \S+ \[(\d+)\]")
PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")


def capture_statements(db: str, server: Server, requests: list[tuple[str, str]]) -> dict:
    """The statements the service sends for each request, read from PostgreSQL's log with
    `log_statement = 'all'` set on the database, and their parameters; not the event feed's,
    which run meanwhile (see FEED_STATEMENT)."""
    if not os.access(PG_LOG, os.R_OK):
        raise RuntimeError(f"cannot read PostgreSQL's log {PG_LOG} (set BENCH_PG_LOG)")
    sql("postgres", f"ALTER DATABASE \"{db}\" SET log_statement = 'all'")
    try:
        server.start()
        token = server.token()
        offset = PG_LOG.stat().st_size
        for key, path in requests:
            sql(db, f"SELECT 'bench-capture-begin {key}'")
            status, _ = http(server.port, "GET", path, headers={"Authorization": f"Bearer {token}"})
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status} during the capture")
            sql(db, f"SELECT 'bench-capture-end {key}'")
        time.sleep(0.2)
        server.stop()
    finally:
        sql("postgres", f'ALTER DATABASE "{db}" RESET log_statement')
    with open(PG_LOG, errors="replace") as f:
        f.seek(offset)
        text = f.read()
    # Join continuation lines (multi-line statements) to their entry.
    entries: list[str] = []
    for line in text.splitlines():
        if LOG_LINE.match(line) or not entries:
            entries.append(line)
        else:
            entries[-1] += "\n" + line.lstrip("\t")
    current = None
    marker = f"@{db} "
    # Every statement of the log from the first window on, in order: its window (None
    # between windows), its backend, and its parameters (from the `DETAIL` line after it).
    statements: list[dict] = []
    last: dict[str, dict] = {}
    for entry in entries:
        if marker not in entry:
            continue
        if m := re.search(r"statement: SELECT 'bench-capture-(begin|end) (\w+)'", entry):
            current = m.group(2) if m.group(1) == "begin" else None
            continue
        pid = m.group(1) if (m := LOG_PID.match(entry)) else ""
        if m := re.search(r"LOG:  (?:execute [^:]*|statement): (.*)", entry, re.S):
            last[pid] = {"sql": m.group(1).strip(), "params": [], "window": current}
            statements.append((pid, last[pid]))
        elif (m := re.search(r"DETAIL:  parameters: (.*)", entry, re.S)) and pid in last:
            last[pid]["params"] = [
                None if v == "NULL" else v[1:-1].replace("''", "'")
                for _, v in PARAM.findall(m.group(1))]
    # Each backend's transactions (a statement outside one is its own); the feed's go.
    feed: set[int] = set()
    open_transaction: dict[str, list[dict]] = {}
    for pid, st in statements:
        transaction = open_transaction.setdefault(pid, [])
        transaction.append(st)
        if FEED_STATEMENT.search(st["sql"]):
            st["feed"] = True
        if TRANSACTION_END.match(st["sql"]) or not TRANSACTION_BEGIN.match(transaction[0]["sql"]):
            if any(t.get("feed") for t in transaction):
                feed.update(id(t) for t in transaction)
            del open_transaction[pid]
    captured: dict[str, list] = {key: [] for key, _ in requests}
    for _, st in statements:
        if st["window"] and id(st) not in feed:
            captured[st["window"]].append({"sql": st["sql"], "params": st["params"]})
    return captured


def pgbench_script(key: str, statements: list[dict]) -> str:
    """A pgbench script sending `statements` as the service does: each parameter a pgbench
    variable, so that `-M prepared` prepares the same statement text with $n placeholders."""
    lines = [
        f"-- The statements one `{key}` request of the service sends, in order.",
        "-- Captured by tests/bench/bench.py from PostgreSQL's log: `ALTER DATABASE <db> SET",
        "-- log_statement = 'all'`, one request through the release build, the log's `execute`",
        "-- lines and their `DETAIL: parameters` (see capture_statements). Parameters become",
        "-- pgbench variables, so `pgbench -M prepared` prepares the statements with $n",
        "-- placeholders as the service does. Text parameters, which \\set cannot hold, are",
        "-- given on pgbench's command line: one `-- pgbench -D name=value` line each.",
        f"-- Captured on {dt.date.today().isoformat()}; `tests/bench/run --update-sql` rewrites this file.",
    ]
    defines: list[str] = []
    body: list[str] = []
    for i, st in enumerate(statements, 1):
        text = st["sql"]
        for n, value in reversed(list(enumerate(st["params"], 1))):
            var = f"s{i}_p{n}"
            if value is None:
                replacement = "NULL"
            else:
                if re.fullmatch(r"-?\d+", value) or value.lower() in ("true", "false"):
                    body.append(f"\\set {var} {value.lower()}")
                elif value in ("t", "f"):
                    body.append(f"\\set {var} {'true' if value == 't' else 'false'}")
                else:
                    defines.append(f"{var}={value}")
                replacement = f":{var}"
            text = re.sub(rf"\${n}(?!\d)", replacement, text)
        body.append(" ".join(text.split()) + ";")
    lines += [f"-- pgbench -D {d}" for d in defines]
    return "\n".join(lines + sorted(b for b in body if b.startswith("\\set")) +
                     [b for b in body if not b.startswith("\\set")]) + "\n"


def script_defines(path: Path) -> list[str]:
    return [line.split("-D", 1)[1].strip() for line in path.read_text().splitlines()
            if line.startswith("-- pgbench -D ")]


def script_sql(path: Path) -> str:
    return "\n".join(l for l in path.read_text().splitlines() if not l.startswith("--")).strip()


def pgbench(db: str, script: Path, seconds: int, cfg, tag: str) -> dict:
    logdir = OUT / "pgbench" / f"log-{tag}"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    cmd = [PGBENCH, "-h", PGHOST, "-p", PGPORT, "-U", PGUSER, "-n", "-M", "prepared",
           "-c", str(cfg.pg_clients), "-j", str(cfg.pg_threads), "-T", str(seconds),
           "-f", str(script), "-l", "--log-prefix", str(logdir / "tx")]
    for d in script_defines(script):
        cmd += ["-D", d]
    p = run(cmd + [db], capture_output=True, check=False)
    (OUT / "logs" / f"pgbench-{tag}.log").write_text(" ".join(cmd) + "\n" + p.stdout + p.stderr)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", p.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", p.stdout)
    if p.returncode != 0 or not m:
        FAILURES.append(f"pgbench {script.name}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
        return {"tps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "failed": 0, "transactions": 0}
    lat = []
    for f in logdir.iterdir():
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                lat.append(int(parts[2]))
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000 if lat else 0.0
    shutil.rmtree(logdir, ignore_errors=True)
    return {"tps": float(m.group(1)), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "failed": int(failed.group(1)) if failed else 0, "transactions": len(lat)}


# ---------------------------------------------------------------- the report

def fnum(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def fratio(x: float) -> str:
    return "n/a" if math.isnan(x) else (f"{x:.1f}×" if x >= 10 else f"{x:.2f}×")


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "missed")


def machine() -> list[str]:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = proc_meminfo_gb()
    try:
        pg_version = sql("postgres", "SHOW server_version").split()[0]
    except (subprocess.CalledProcessError, IndexError):
        pg_version = "(unreachable)"
    wrk_v = run([WRK, "-v"], capture_output=True, check=False).stdout.split()[1:2]
    commit = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                 check=False).stdout.strip()
    dirty = run(["git", "-C", str(ROOT), "status", "--porcelain", "--", ".", ":!tests/bench"],
                capture_output=True, check=False).stdout.strip()
    default_binary = BINARY == (ROOT / "target" / "release" / "api").resolve()
    return [f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GB RAM, Linux {platform.release()}",
            f"PostgreSQL {pg_version} at {PGHOST}:{PGPORT}, wrk {' '.join(wrk_v)}, "
            + (f"commit {commit}{' + uncommitted changes' if dirty else ''} (target/release/api)"
               if default_binary else f"binary {BINARY}")]


def proc_meminfo_gb() -> float:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def cursor_ratios(backend: str, r: dict, seed: str) -> list[str]:
    """The cursor pages against the first page of their listing: p50 within 1.3×."""
    lines = []
    for key, first, what in (("cursor", "list", "first page"), ("search_cursor", "search", "first search page")):
        if r.get(key) and r.get(first):
            depth = r[key].get("depth", LOAD_BY_KEY[key].cursor_depth)
            place = f"match {depth:,}" if key == "search_cursor" else f"depth {depth:,}"
            g = ratio(r[key]["p50_ms"], r[first]["p50_ms"])
            lines.append(f"| {backend}: {LOAD_BY_KEY[key].title.split(' (')[0]} ({place}) p50 / {what} p50, "
                         f"{seed} | {fratio(g)} | ≤ 1.3× | {verdict(g <= 1.3)} |")
        # The skip load's page is the cursor's only when the seed holds the cursor's depth.
        if key == "cursor" and r.get(key) and r.get("skip") and r[key].get("depth") == CURSOR_DEPTH:
            g = ratio(r["skip"]["p50_ms"], r[key]["p50_ms"])
            lines.append(f"| {backend}: skip p50 / cursor p50 (the same page), {seed} | {fratio(g)} | | |")
    return lines


def report(cfg, res: dict, started: float) -> str:
    L: list[str] = []
    mode = "short" if cfg.short else "full"
    L.append(f"# Benchmark ({mode} run, {dt.datetime.now().strftime('%Y-%m-%d %H:%M')})")
    L.append("")
    for line in cfg.machine:
        L.append(f"- {line}")
    s = cfg.seed
    L.append(f"- seed: {s['users']:,} users, {s['posts']:,} posts, {s['votes']:,} votes; "
             f"wrk -t{cfg.threads} -c{cfg.connections}, {cfg.warmup} s warm-up, "
             f"{cfg.rounds} × {cfg.duration} s measured per load and server, servers alternating; "
             f"peer: FastAPI, {cfg.peer_workers} uvicorn workers")
    args = " ".join(sys.argv[1:])
    L.append(f"- `tests/bench/run{' ' + args if args else ''}`, took {(time.monotonic() - started) / 60:.1f} min")
    L.append("")

    loads = res["loads"]
    servers = [k for k in ("ours (PG)", "baseline (PG)", "peer (PG)", "ours (SQLite)",
                           "baseline (SQLite)") if k in loads]
    rows = [(l.key, l.shown()) for l in LOADS] + [
        ("id_storm", f"GET /posts/{{id}} while {cfg.login_clients} clients log in"),
        ("login_storm", f"POST /login, {cfg.login_clients} clients, during the GETs"),
        ("list_c256", "GET /posts?limit=10, -c256")]
    L.append("## Load")
    L.append("")
    L.append("req/s over the measured runs; p50 and p99 the median over runs; errors are socket "
             "errors and timeouts (10 s), non-2xx the answers of status 400 and above; peak RSS "
             "the highest VmHWM during a measured run, reset to the current RSS before each run "
             "(the peer: summed over its processes); the -c256 rows on a freshly started server.")
    L.append("")
    L.append("| endpoint | server | req/s | p50 ms | p99 ms | errors | non-2xx | peak RSS MB |")
    L.append("|---|---|--:|--:|--:|--:|--:|--:|")
    for key, title in rows:
        for srv in servers:
            r = loads[srv].get(key)
            if not r:
                continue
            if "depth" in r:
                title = LOAD_BY_KEY[key].shown(r["depth"])
            if r["requests"] == 0:
                L.append(f"| {title} | {srv} | 0 | no answer within the run | | {r['errors']} | "
                         f"{r['non2xx']} | {r['peak_mb']:.1f} |")
                continue
            L.append(f"| {title} | {srv} | {fnum(r['rps'])} | {fnum(r['p50_ms'])} | "
                     f"{fnum(r['p99_ms'])} | {r['errors']} | {r['non2xx']} | {r['peak_mb']:.1f} |")
    L.append("")

    limits = [(srv, loads[srv]["write_limit"]) for srv in servers if loads[srv].get("write_limit")]
    if limits:
        L.append("## Write limit (PostgreSQL)")
        L.append("")
        L.append(f"What counting writes costs them: the service restarted with "
                 f"`WRITES_PER_MINUTE={WRITE_LIMIT_ON}` (on: every write counted, none refused), then "
                 f"`0` (off), {cfg.rounds} × in turn, each load warmed up after each restart "
                 f"({cfg.warmup} s) and run ({cfg.duration} s); `BCRYPT_COST` 4 both ways (the accounts' "
                 "registrations; no write hashes). One account: seed1's posts, a voter of its own per "
                 f"run, as the loads above; {cfg.write_accounts} accounts: registered for each run, each "
                 "request as the next one's. Columns as above; the ratios under Ratios.")
        L.append("")
        L.append("| endpoint | server | accounts | limit | req/s | p50 ms | p99 ms | errors | non-2xx |")
        L.append("|---|---|--:|---|--:|--:|--:|--:|--:|")
        for srv, w in limits:
            for r in w["loads"].values():
                for mode in ("off", "on"):
                    m = r[mode]
                    L.append(f"| {r['endpoint']} | {srv} | {r['accounts']} | {mode} | {fnum(m['rps'])} | "
                             f"{fnum(m['p50_ms'])} | {fnum(m['p99_ms'])} | {m['errors']} | {m['non2xx']} |")
        L.append("")

    events = [(srv, loads[srv]["events"]) for srv in servers if loads[srv].get("events")]
    if events:
        L.append("## Live events")
        L.append("")
        L.append(f"Streams of `GET /events` (seed1's token) on a freshly started instance with "
                 f"`HTTP_MAX_CONNECTIONS` and `EVENT_STREAMS_PER_ACCOUNT` raised for them, read by "
                 f"`sse_subscribers.c` (one "
                 f"process, epoll), while seed2 writes posts through "
                 f"`POST /posts` at {cfg.event_rate} a second for {cfg.event_seconds} s. Latency: from "
                 "the write's request sent to the event's arrival at a subscriber, over every pair of "
                 "subscriber and post; beside it the write's own latency, and the arrival counted from "
                 "the write's answer instead (the fan-out alone; negative when the event came first). RSS: VmRSS before the subscribers attach and with them attached "
                 "(idle), and the peak (VmHWM) while events are delivered. The subscribers, the writer "
                 "and wrk share the machine's cores with the instance.")
        L.append("")
        L.append("| server | subscribers | posts/s | delivered | p50 ms | p99 ms | max ms | "
                 "POST /posts p50 · p99 ms | after the answer p50 · p99 ms | RSS MB before · attached · peak |")
        L.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for srv, e in events:
            L.append(f"| {srv} | {e['connected']:,} of {e['subscribers']:,} | {e['rate']:.0f} | "
                     f"{e['expected'] - e['missing']:,} of {e['expected']:,} | {fnum(e['p50_ms'])} | "
                     f"{fnum(e['p99_ms'])} | {fnum(e['max_ms'])} | {fnum(e['write_p50_ms'])} · "
                     f"{fnum(e['write_p99_ms'])} | {e['answer_p50_ms']:.1f} · {e['answer_p99_ms']:.1f} | "
                     f"{e['rss_before_mb']:.1f} · {e['rss_attached_mb']:.1f} · {e['peak_mb']:.1f} |")
        L.append("")
        L.append(f"`GET /posts?limit=10` (wrk as the list load, {cfg.duration} s each), req/s · p99 ms: "
                 "without subscribers (one run before they attach, one after they left), with them "
                 "attached and idle, and with them attached while "
                 f"posts are written and delivered at {cfg.event_rate} a second (the delivery latency "
                 "of those posts beside it).")
        L.append("")
        L.append("| server | without | attached | attached, delivering | attached / without | "
                 "delivery p50 · p99 ms meanwhile |")
        L.append("|---|--:|--:|--:|--:|--:|")
        for srv, e in events:
            L.append(f"| {srv} | {fnum(e['list_without'])} · {fnum(e['list_p99_without_ms'])} | "
                     f"{fnum(e['list_attached'])} · {fnum(e['list_p99_attached_ms'])} | "
                     f"{fnum(e['list_busy'])} · {fnum(e['list_p99_busy_ms'])} | "
                     f"{fratio(ratio(e['list_attached'], e['list_without']))} | "
                     f"{fnum(e['busy_p50_ms'])} · {fnum(e['busy_p99_ms'])} |")
        L.append("")
        odd = [f"{srv}: {e.get('stream_closed', 0)} streams closed by the server, "
               f"{e.get('stream_out_of_order', 0)} events out of id order, {e['failed']} streams not "
               f"opened, {e['write_errors']} writes failed"
               for srv, e in events
               if e.get("stream_closed") or e.get("stream_out_of_order") or e["failed"] or e["write_errors"]]
        for line in odd:
            L.append(f"- {line}")
        if odd:
            L.append("")

    if "pgbench" in res:
        L.append("## pgbench (the list endpoint's SQL, caller seed1)")
        L.append("")
        L.append(f"`pgbench -M prepared -c {cfg.pg_clients} -j {cfg.pg_threads} -T {cfg.pg_duration}` "
                 "on the PostgreSQL database the service was loaded on.")
        L.append("")
        L.append("| script | statements | tps | p50 ms | p99 ms | failed |")
        L.append("|---|--:|--:|--:|--:|--:|")
        for name, r in res["pgbench"].items():
            L.append(f"| `{name}` | {r['statements']} | {fnum(r['tps'])} | {fnum(r['p50_ms'])} | "
                     f"{fnum(r['p99_ms'])} | {r['failed']} |")
        L.append("")

    if "growth" in res:
        L.append("## Growth (ours; the list on 10k and 1M posts, search and the cursor pages on 1M)")
        L.append("")
        seeds = "; ".join(f"{name}: {g['users']:,} users, {g['posts']:,} posts, {g['votes']:,} votes"
                          for name, g in res.get("growth_seeds", {}).items())
        L.append(f"Seeds ({seeds}); the same wrk settings as above.")
        L.append("")
        L.append("| backend | seed | endpoint | req/s | p50 ms | p99 ms | errors | non-2xx |")
        L.append("|---|---|---|--:|--:|--:|--:|--:|")
        for backend, seeds in res["growth"].items():
            for seed_name, per in seeds.items():
                for key, r in per.items():
                    title = LOAD_BY_KEY[key].shown(r.get("depth"))
                    L.append(f"| {backend} | {seed_name} | {title} | {fnum(r['rps'])} | "
                             f"{fnum(r['p50_ms'])} | {fnum(r['p99_ms'])} | {r['errors']} | {r['non2xx']} |")
        L.append("")

    L.append("## Startup to a healthy `/health` (ours, already migrated database)")
    L.append("")
    L.append("| backend | tries | median ms | max ms |")
    L.append("|---|--:|--:|--:|")
    for backend, times in res["startup"].items():
        L.append(f"| {backend} | {len(times)} | {statistics.median(times) * 1000:.0f} | "
                 f"{max(times) * 1000:.0f} |")
    L.append("")

    L.append("## Ratios and targets (one run; informative, not assertions)")
    L.append("")
    L.append("| figure | value | target | |")
    L.append("|---|--:|---|---|")
    ours_pg, peer_pg = loads.get("ours (PG)", {}), loads.get("peer (PG)", {})
    for key, title in rows[:-1]:
        if key in ours_pg and key in peer_pg:
            rr = ratio(ours_pg[key]["rps"], peer_pg[key]["rps"])
            pr = ratio(ours_pg[key]["p99_ms"], peer_pg[key]["p99_ms"] if peer_pg[key]["requests"] else 0)
            gated = key in ("list", "id", "search")
            L.append(f"| {title}: req/s ours/peer | {fratio(rr)} | {'≥ 15×' if gated else ''} | "
                     f"{verdict(rr >= 15) if gated else ''} |")
            L.append(f"| {title}: p99 ours/peer | {fratio(pr)} | {'≤ 0.10×' if gated else ''} | "
                     f"{verdict(pr <= 0.1) if gated else ''} |")
    for backend in ("PG", "SQLite"):
        now, before = loads.get(f"ours ({backend})", {}), loads.get(f"baseline ({backend})", {})
        for key, title in rows:
            if key in now and key in before:
                rr = ratio(now[key]["rps"], before[key]["rps"])
                pr = ratio(now[key]["p99_ms"], before[key]["p99_ms"])
                L.append(f"| {backend}, {title}: req/s ours/baseline | {fratio(rr)} | | |")
                L.append(f"| {backend}, {title}: p99 ours/baseline | {fratio(pr)} | | |")
    for srv, w in limits:
        for r in w["loads"].values():
            what = f"{srv}: {r['endpoint']}, {r['accounts']} account{'s' if r['accounts'] > 1 else ''}"
            L.append(f"| {what}: req/s limit on/off | {fratio(r['rps_on_off'])} | | |")
            L.append(f"| {what}: p99 limit on/off | {fratio(r['p99_on_off'])} | | |")
    for backend in ("PG", "SQLite"):
        for line in cursor_ratios(backend, loads.get(f"ours ({backend})", {}), f"{cfg.seed_posts:,} posts"):
            L.append(line)
    pgb = res.get("pgbench", {})
    if "list" in ours_pg:
        for name, r in pgb.items():
            rr = ratio(ours_pg["list"]["rps"], r["tps"])
            gated = "fastest" in name
            L.append(f"| GET /posts?limit=10 req/s / pgbench `{name}` tps | {fratio(rr)} | "
                     f"{'≥ 0.50×' if gated else ''} | {verdict(rr >= 0.5) if gated else ''} |")
    for backend, seeds in res.get("growth", {}).items():
        small, big = seeds.get("10k posts", {}).get("list"), seeds.get("1M posts", {})
        if small and big.get("list"):
            g = ratio(big["list"]["p50_ms"], small["p50_ms"])
            L.append(f"| {backend}: list p50, 1M posts / 10k posts | {fratio(g)} | ≤ 1.5× | {verdict(g <= 1.5)} |")
        if big.get("list") and big.get("search"):
            g = ratio(big["search"]["p50_ms"], big["list"]["p50_ms"])
            L.append(f"| {backend}: search=abc p50 / list p50, 1M posts | {fratio(g)} | ≤ 3× | {verdict(g <= 3)} |")
        for line in cursor_ratios(backend, big, "1M posts"):
            L.append(line)
    for srv in servers:
        r = loads[srv]
        if "id" in r and "id_storm" in r:
            g = ratio(r["id_storm"]["rps"], r["id"]["rps"])
            gated = srv.startswith("ours")
            L.append(f"| {srv}: GET /posts/{{id}} req/s during logins / idle | {fratio(g)} | "
                     f"{'≥ 0.50×' if gated else ''} | {verdict(g >= 0.5) if gated else ''} |")
            p = r["id_storm"]["p99_ms"] if r["id_storm"]["requests"] else float("inf")
            shown = f"{fnum(p)} ms" if r["id_storm"]["requests"] else "no answer"
            L.append(f"| {srv}: GET /posts/{{id}} p99 during logins | {shown} | "
                     f"{'< 100 ms' if gated else ''} | {verdict(p < 100) if gated else ''} |")
    for srv in servers:
        r = loads[srv].get("list_c256")
        if r:
            gated = srv.startswith("ours")
            L.append(f"| {srv}: peak RSS under -c256 | {r['peak_mb']:.1f} MB | "
                     f"{'< 48 MB' if gated else ''} | {verdict(r['peak_mb'] < 48) if gated else ''} |")
    for srv, e in events:
        gated = srv == "ours (PG)"
        L.append(f"| {srv}: event delivery p99, {e['subscribers']:,} subscribers, {e['rate']:.0f} posts/s | "
                 f"{fnum(e['p99_ms'])} ms | {'< 200 ms' if gated else ''} | "
                 f"{verdict(e['p99_ms'] < 200) if gated else ''} |")
        rss = max(e["rss_attached_mb"], e["peak_mb"])
        L.append(f"| {srv}: RSS with {e['subscribers']:,} subscribers (peak while delivering) | "
                 f"{rss:.1f} MB | < 100 MB | {verdict(rss < 100)} |")
        L.append(f"| {srv}: GET /posts req/s with the subscribers attached / without | "
                 f"{fratio(ratio(e['list_attached'], e['list_without']))} | | |")
    for backend, times in res["startup"].items():
        m = statistics.median(times) * 1000
        L.append(f"| {backend}: start to healthy, median | {m:.0f} ms | < 200 ms | {verdict(m < 200)} |")
    L.append("")

    if res.get("notes") or NOTES:
        L.append("## Notes")
        L.append("")
        for n in res.get("notes", []) + NOTES:
            L.append(f"- {n}")
        L.append("")
    if FAILURES:
        L.append("## Harness failures")
        L.append("")
        for f in FAILURES:
            L.append(f"- {f}")
        L.append("")
    return "\n".join(L)


# ---------------------------------------------------------------- the sections

def section_postgres(cfg, res: dict, live: list, state: dict, startup_tries: int) -> None:
    """Ours and the peer on fresh PostgreSQL databases with the same seed."""
    db_ours, db_peer = "bench_ours", "bench_peer"
    log(f"PostgreSQL: fresh databases {db_ours} and {db_peer}")
    fresh_database(db_ours)
    a = ours("ours-pg", "ours (PG)", pg_url(db_ours))
    live.append(a)
    t = a.start()
    a.stop()
    res["notes"].append(f"ours (PG): first start, migrating an empty database, healthy after {t * 1000:.0f} ms")
    db_base = "bench_base"
    if cfg.baseline:
        fresh_database(db_base)
    servers = [a, *baseline(cfg, "PG", pg_url(db_base))]
    live.extend(servers[1:])
    if not cfg.no_peer:
        fresh_database(db_peer)
        b = peer(db_peer)
        live.append(b)
        log("peer: first start creates its tables (and its venv on a first run)")
        b.start(timeout=900)
        b.stop()
        servers.append(b)
    for db in [db_ours] + ([db_base] if cfg.baseline else []) + ([] if cfg.no_peer else [db_peer]):
        log(f"seeding {db} with seed.sql ({cfg.seed})")
        took = seed_postgres(db, cfg.seed, res["notes"])
        res["notes"].append(f"seed.sql into {db}: {took:.0f} s")
    state["db_ours"] = db_ours

    log(f"ours (PG): {startup_tries} starts on the migrated database")
    res["startup"]["ours (PG)"] = startup_times(a, startup_tries)
    for base in servers[1:2]:
        res["startup"][base.label] = startup_times(base, startup_tries)
    if not cfg.no_peer:
        peer_start = startup_times(b, 1)[0]
        res["notes"].append(f"peer (PG): start to healthy {peer_start * 1000:.0f} ms "
                            f"(uvicorn, {cfg.peer_workers} workers)")

    log("capturing the SQL of the list endpoint from PostgreSQL's log")
    state["service_script"] = capture_list_sql(cfg, res, a, db_ours)

    for s in servers:
        s.start(timeout=120)
    run_loads(servers, cfg, res["loads"], "PG")


def run_loads(servers: list[Server], cfg, results: dict, section: str) -> None:
    load_matrix(servers, selected(cfg, LOADS), cfg, results, section)
    if selected(cfg, ["storm"]):
        storm_matrix(servers, cfg, results, section)
    if selected(cfg, ["list_c256"]):
        rss_matrix(servers, cfg, results, section)
    if selected(cfg, ["events"]):
        events_matrix(servers, cfg, results, section)
    # PostgreSQL only: SQLite counts a write in a statement of its own, on a database that
    # takes one writer at a time.
    if selected(cfg, ["write_limit"]) and section == "PG":
        write_limit_matrix(servers, cfg, results, section)


def capture_list_sql(cfg, res: dict, server: Server, db: str) -> Path:
    """The pgbench script of the list endpoint's statements: this run's capture, or the
    committed one when the capture fails."""
    committed = PGBENCH_DIR / "list_service.sql"
    try:
        captured = capture_statements(db, server, [("list", "/posts?limit=10")])
    except Exception as err:
        res["notes"].append(f"SQL capture failed ({err}); pgbench ran the committed list_service.sql")
        return committed
    if not captured.get("list"):
        FAILURES.append("the capture found no statement of the list request in PostgreSQL's log")
        return committed
    text = pgbench_script("GET /posts?limit=10", captured["list"])
    live_script = OUT / "pgbench" / "list_service.sql"
    live_script.write_text(text)
    if not committed.exists() or script_sql(committed) != script_sql(live_script):
        if cfg.update_sql or not committed.exists():
            committed.write_text(text)
            res["notes"].append("tests/bench/pgbench/list_service.sql rewritten from this run's capture")
        else:
            res["notes"].append("the service's list SQL differs from tests/bench/pgbench/list_service.sql; "
                                "pgbench ran this run's capture (target/bench/pgbench/list_service.sql); "
                                "`--update-sql` rewrites the committed copy")
    return live_script


def section_pgbench(cfg, res: dict, state: dict) -> None:
    """pgbench on the quiet database the service was loaded on."""
    db = state["db_ours"]
    res["pgbench"] = {}
    service_script = state.get("service_script", PGBENCH_DIR / "list_service.sql")
    for script in (service_script, PGBENCH_DIR / "list_fastest.sql"):
        n = sum(1 for part in script_sql(script).split(";") if part.strip())
        log(f"pgbench {script.name}: warm-up {cfg.warmup} s, then {cfg.pg_duration} s")
        pgbench(db, script, cfg.warmup, cfg, script.stem + "-warmup")
        r = pgbench(db, script, cfg.pg_duration, cfg, script.stem)
        r["statements"] = n
        res["pgbench"][script.name] = r


def section_sqlite(cfg, res: dict, live: list, startup_tries: int) -> None:
    """Ours on an SQLite file seeded alike."""
    path = OUT / "sqlite" / "bench.db"
    c = ours("ours-sqlite", "ours (SQLite)", f"sqlite://{path}?mode=rwc")
    live.append(c)
    c.start()
    c.stop()
    log(f"seeding {path} ({cfg.seed})")
    took = seed_sqlite(path, cfg.seed)
    res["notes"].append(f"seed_sqlite.py into {path.name}: {took:.0f} s")
    log(f"ours (SQLite): {startup_tries} starts on the migrated database")
    res["startup"]["ours (SQLite)"] = startup_times(c, startup_tries)
    base_path = OUT / "sqlite" / "baseline.db"
    for leftover in base_path.parent.glob(base_path.name + "*"):
        leftover.unlink()
    servers = [c, *baseline(cfg, "SQLite", f"sqlite://{base_path}?mode=rwc")]
    live.extend(servers[1:])
    for base in servers[1:]:
        seed_sqlite(base_path, cfg.seed)
        res["startup"][base.label] = startup_times(base, startup_tries)
    for s in servers:
        s.start()
    run_loads(servers, cfg, res["loads"], "SQLite")


def section_growth(cfg, res: dict, live: list, growth_seeds: dict) -> None:
    """Ours only, both backends: the list on 10k and 1M posts; search=abc and the cursor pages
    (post 50,000 of the listing, match 500 of search=abc) on 1M posts. `--loads` keeps only
    those it names."""
    res["growth"] = {}
    res["growth_seeds"] = growth_seeds
    grow_loads = selected(cfg, [l for l in LOADS if l.key in ("list", "search", "cursor", "search_cursor")])
    db_g = "bench_ours_growth"
    g_path = OUT / "sqlite" / "growth.db"
    backends = [("PostgreSQL", lambda: ours("ours-pg-growth", "ours (PG)", pg_url(db_g)))]
    if not cfg.no_sqlite:
        backends.append(("SQLite", lambda: ours("ours-sqlite-growth", "ours (SQLite)",
                                                f"sqlite://{g_path}?mode=rwc")))
    try:
        for backend, make in backends:
            if backend == "PostgreSQL":
                fresh_database(db_g)
            srv = make()
            live.append(srv)
            srv.start()
            srv.stop()
            res["growth"][backend] = {}
            for seed_name, seed in growth_seeds.items():
                log(f"growth {backend}: seeding {seed}")
                took = (seed_postgres(db_g, seed, res["notes"]) if backend == "PostgreSQL"
                        else seed_sqlite(g_path, seed))
                res["notes"].append(f"growth seed, {backend}, {seed_name}: {took:.0f} s")
                forget_token(srv)  # the seed emptied users, and with them the sessions
                gcfg = argparse.Namespace(**{**vars(cfg), "seed_users": seed["users"],
                                             "seed_posts": seed["posts"]})
                srv.start()
                per: dict = {}
                loads = (grow_loads if seed["posts"] >= 1_000_000
                         else [l for l in grow_loads if l.key == "list"])
                load_matrix([srv], loads, gcfg, per, f"growth {backend} {seed_name}")
                srv.stop()
                res["growth"][backend][seed_name] = per.get(srv.label, {})
    finally:
        if not cfg.keep:
            for s in live:
                s.stop()
            drop_database(db_g)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{g_path}{suffix}").unlink(missing_ok=True)


# ---------------------------------------------------------------- the run

def install_wrk() -> str:
    found = find_tool("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is missing: apt-get install -y wrk")
        run(["apt-get", "update", "-qq"], capture_output=True)
        run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = find_tool("wrk")
    if not found:
        sys.exit("wrk is required (Debian: apt-get install wrk)")
    return found


def main() -> int:
    global PSQL, PGBENCH, WRK, BINARY
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--short", action="store_true",
                    help="CI smoke run: small seed, seconds-long loads, no growth runs")
    ap.add_argument("--duration", type=int, help="seconds of each measured run (10; short 2)")
    ap.add_argument("--warmup", type=int, help="seconds of each warm-up run (5; short 1)")
    ap.add_argument("--rounds", type=int, help="measured runs per load and server (2; short 1)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-peer", action="store_true", help="skip the FastAPI peer")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SQLite pass")
    ap.add_argument("--no-growth", action="store_true", help="skip the 10k/1M-post growth runs")
    ap.add_argument("--update-sql", action="store_true",
                    help="rewrite tests/bench/pgbench/list_service.sql from this run's capture")
    ap.add_argument("--keep", action="store_true", help="keep the growth databases")
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "api"),
                    help="the service's binary (target/release/api)")
    ap.add_argument("--baseline", metavar="BINARY",
                    help="an older build of the service (an earlier commit's target/release/api), "
                         "loaded beside this one on the same databases, runs alternating: "
                         "before/after pairs measured in one run; it runs on the schema this "
                         "one migrated to, without migrating")
    ap.add_argument("--loads", type=lambda text: set(text.split(",")), metavar="KEYS",
                    help="only these loads, comma-separated: list,id,search,skip,cursor,"
                         "search_cursor,create,vote,storm,list_c256,events,write_limit (all); the "
                         "growth runs too keep only these of theirs (list,search,cursor,search_cursor)")
    ap.add_argument("--event-subscribers", type=int,
                    help="streams of GET /events in the live-events load (1000; short 200)")
    ap.add_argument("--event-seconds", type=int,
                    help="seconds of posts written while they are followed (20; short 5)")
    ap.add_argument("--event-rate", type=int, default=100, help="posts written a second (100)")
    ap.add_argument("--write-accounts", type=int, default=32,
                    help="accounts the write-limit load's many-account runs write as (32)")
    ap.add_argument("--growth-votes-per-post", type=int, default=10,
                    help="votes per post in the growth seeds (10, as seed.sql's defaults)")
    cfg = ap.parse_args()
    cfg.duration = cfg.duration or (2 if cfg.short else 10)
    cfg.warmup = cfg.warmup or (1 if cfg.short else 5)
    cfg.rounds = cfg.rounds or (1 if cfg.short else 2)
    cfg.event_subscribers = cfg.event_subscribers or (200 if cfg.short else 1000)
    cfg.event_seconds = cfg.event_seconds or (5 if cfg.short else 20)
    cfg.seed = ({"users": 200, "posts": 2000, "votes": 20000} if cfg.short
                else {"users": 10000, "posts": 100000, "votes": 1000000})
    cfg.seed_users, cfg.seed_posts = cfg.seed["users"], cfg.seed["posts"]
    cfg.login_clients, cfg.peer_workers = 32, 2
    cfg.pg_clients, cfg.pg_threads = 16, 2
    cfg.pg_duration = 3 if cfg.short else 20
    startup_tries = 3 if cfg.short else 7
    vpp = cfg.growth_votes_per_post
    growth_seeds = {"10k posts": {"users": 10000, "posts": 10000, "votes": 10000 * vpp},
                    "1M posts": {"users": 10000, "posts": 1000000, "votes": 1000000 * vpp}}

    started = time.monotonic()
    PSQL = find_tool("psql", "/usr/lib/postgresql/15/bin/psql") or sys.exit("psql is required")
    PGBENCH = find_tool("pgbench", "/usr/lib/postgresql/15/bin/pgbench") or sys.exit("pgbench is required")
    WRK = install_wrk()
    BINARY = Path(cfg.binary).resolve()
    if not BINARY.exists():
        sys.exit(f"{BINARY} is missing: cargo build --release -p api (tests/bench/run does it)")
    for d in ("logs", "runs", "pgbench", "sqlite", "bin"):
        shutil.rmtree(OUT / d, ignore_errors=True)
        (OUT / d).mkdir(parents=True, exist_ok=True)
    # The run uses a copy: a rebuild of target/release during the run does not change it.
    shutil.copy2(BINARY, OUT / "bin" / "api")
    if cfg.baseline:
        shutil.copy2(Path(cfg.baseline).resolve(), OUT / "bin" / "baseline")
    cfg.machine = machine()

    res: dict = {"loads": {}, "startup": {}, "notes": []}
    live: list[Server] = []

    def stop_all(*_):
        for s in live:
            s.stop()

    signal.signal(signal.SIGTERM, lambda *a: (stop_all(), sys.exit(143)))
    state: dict = {}

    def attempt(section: str, fn) -> None:
        """A section that breaks is recorded; the sections after it still run."""
        try:
            fn()
        except Exception as err:
            FAILURES.append(f"{section}: {type(err).__name__}: {err}")
            log(f"{section}: harness failure: {err}")
        finally:
            stop_all()

    attempt("PostgreSQL", lambda: section_postgres(cfg, res, live, state, startup_tries))
    if "db_ours" in state:
        attempt("pgbench", lambda: section_pgbench(cfg, res, state))
    if not cfg.no_sqlite:
        attempt("SQLite", lambda: section_sqlite(cfg, res, live, startup_tries))
    if not cfg.short and not cfg.no_growth:
        attempt("growth", lambda: section_growth(cfg, res, live, growth_seeds))

    try:
        text = report(cfg, res, started)
    except Exception as err:
        FAILURES.append(f"report: {type(err).__name__}: {err}")
        text = "# Benchmark\n\nNo report: the harness broke.\n\n" + "\n".join(f"- {f}" for f in FAILURES)
    print(text)
    (OUT / "results.md").write_text(text + "\n")
    (OUT / "results.json").write_text(json.dumps({**res, "load_notes": NOTES, "failures": FAILURES}, indent=1, default=str))
    log(f"written {OUT / 'results.md'}; {(time.monotonic() - started) / 60:.1f} min")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
