#!/usr/bin/env python3
"""Past one database server: the list and by-id loads (a) direct to the primary, (a2) direct
but as behind a transaction-mode pooler (`DATABASE_POOL_MODE=transaction`: what the service
itself pays, a transaction around each read and no cached plans), (b) through PgBouncer in
transaction mode, (c) through PgBouncer with a streaming replica taking the page reads; side
by side in one run, their measured rounds interleaved.

Runs beside the cluster `tests/cluster/run` starts, on the release build:

    cargo build --release -p api
    tests/cluster/run python3 tests/bench/scaling.py [--short]

Figures, never assertions; they go to stdout and target/bench/scaling.md. On one machine the
replica competes with the primary for the same cores: see the README's "Scaling out"."""

import argparse
import os
import shutil
import sys
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the harness: servers, wrk, seeding, the loads)


def cluster(name: str) -> urllib.parse.ParseResult:
    url = os.environ.get(name) or sys.exit(f"{name} is unset: run inside tests/cluster/run")
    return urllib.parse.urlparse(url)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--short", action="store_true", help="small seed, seconds-long loads")
    ap.add_argument("--duration", type=int, help="seconds of each measured run (10; short 2)")
    ap.add_argument("--rounds", type=int, help="measured runs per load and setup (3; short 1)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--binary", default=str(bench.ROOT / "target" / "release" / "api"))
    cfg = ap.parse_args()
    cfg.duration = cfg.duration or (2 if cfg.short else 10)
    cfg.warmup = 1 if cfg.short else 5
    cfg.rounds = cfg.rounds or (1 if cfg.short else 3)
    cfg.seed = ({"users": 200, "posts": 2000, "votes": 20000} if cfg.short
                else {"users": 10000, "posts": 100000, "votes": 1000000})
    cfg.seed_users, cfg.seed_posts = cfg.seed["users"], cfg.seed["posts"]

    primary, replica, pooler = (cluster("CLUSTER_PRIMARY_URL"), cluster("CLUSTER_REPLICA_URL"),
                                cluster("CLUSTER_POOLER_URL"))
    bench.PGHOST, bench.PGPORT = primary.hostname, str(primary.port)
    bench.PSQL = bench.find_tool("psql", "/usr/lib/postgresql/15/bin/psql") or sys.exit("psql is required")
    bench.WRK = bench.install_wrk()
    binary = Path(cfg.binary).resolve()
    if not binary.exists():
        sys.exit(f"{binary} is missing: cargo build --release -p api")
    for d in ("logs", "runs", "bin"):
        (bench.OUT / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, bench.OUT / "bin" / "api")

    db = "bench_scaling"
    bench.log(f"a fresh database {db} on the cluster's primary")
    bench.fresh_database(db)
    direct = bench.ours("scaling-direct", "(a) direct", f"postgres://{primary.netloc}/{db}")
    direct.start()  # migrates
    direct.stop()
    bench.log(f"seeding {db} with seed.sql ({cfg.seed})")
    took = bench.seed_postgres(db, cfg.seed, [])
    bench.sql(db, "ANALYZE")
    unpooled = bench.ours("scaling-unpooled", "(a2) direct, transaction mode",
                          f"postgres://{primary.netloc}/{db}")
    unpooled.env["DATABASE_POOL_MODE"] = "transaction"
    pooled = bench.ours("scaling-pooled", "(b) PgBouncer", f"postgres://{pooler.netloc}/{db}")
    pooled.env.update({"DATABASE_POOL_MODE": "transaction",
                       "DATABASE_LISTEN_URL": f"postgres://{primary.netloc}/{db}"})
    replicated = bench.ours("scaling-replica", "(c) PgBouncer + replica",
                            f"postgres://{pooler.netloc}/{db}")
    replicated.env.update({**pooled.env, "PORT": replicated.env["PORT"],
                           "DATABASE_REPLICA_URL": f"postgres://{replica.netloc}/{db}"})
    servers = [direct, unpooled, pooled, replicated]
    try:
        for server in servers:
            server.start()
        results: dict = {}
        loads = [bench.LOAD_BY_KEY["list"], bench.LOAD_BY_KEY["id"]]
        bench.load_matrix(servers, loads, cfg, results, "scaling")
    finally:
        for server in servers:
            server.stop()
        bench.drop_database(db)

    lines = [
        "# Past one database server",
        "",
        f"seed.sql {cfg.seed} into the cluster's primary ({took:.0f} s); wrk -t{cfg.threads} "
        f"-c{cfg.connections}, {cfg.rounds} × {cfg.duration} s per load and setup, interleaved; "
        "primary, replica, PgBouncer, the service and wrk share this machine's cores.",
        "",
        "| load | setup | req/s | × direct | p50 ms | p99 ms | errors | non-2xx |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for load in loads:
        base = results.get(direct.label, {}).get(load.key, {}).get("rps", 0)
        for server in servers:
            r = results.get(server.label, {}).get(load.key)
            if not r:
                continue
            lines.append(f"| {load.title} | {server.label} | {bench.fnum(r['rps'])} | "
                         f"{bench.fratio(bench.ratio(r['rps'], base))} | {r['p50_ms']:.2f} | "
                         f"{r['p99_ms']:.2f} | {r['errors']} | {r['non2xx']} |")
    if bench.FAILURES:
        lines += ["", "Harness failures:", *[f"- {f}" for f in bench.FAILURES]]
    report = "\n".join(lines) + "\n"
    (bench.OUT / "scaling.md").write_text(report)
    print(report)
    return 1 if bench.FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
