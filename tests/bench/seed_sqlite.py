#!/usr/bin/env python3
"""The SQLite equivalent of ../shared/peers/seed.sql: the same users, posts and votes.

It EMPTIES users, posts and votes first, and the service's outbox of live events (`events`):
the service's triggers, which record each write there, are off for the seed. Run it after
the service has created its schema (the service migrates on start):

    python3 tests/bench/seed_sqlite.py target/bench/sqlite/bench.db
    python3 tests/bench/seed_sqlite.py DB --users 1000 --posts 10000 --votes 100000

The data are those of seed.sql, row for row:
- user N (1..users): email seedN@example.org, password "password123" (the same bcrypt
  cost-12 hash), created 400 days ago + N seconds;
- post N (1..posts): title "Post N <md5(N)>", content md5(7N) + " " repeated 8 times,
  a draft when N is a multiple of 10, created and updated (posts - N) * 5 minutes before
  now, owned by user 1 + (N * 7919) % users;
- votes: ceil(votes / users) per user on consecutive posts from a scattered start:
  vote i is (1 + i / per_user, 1 + ((i / per_user) * 7919 + i % per_user) % posts).

Timestamps are written the way the service's SQLite driver writes a `DateTime<Utc>`
(RFC 3339 with `T`, `+00:00` and 0, 3 or 6 fraction digits), so seeded rows and rows the
service writes sort together.
"""

import argparse
import datetime as dt
import hashlib
import math
import sqlite3
import sys
import time

PASSWORD_HASH = "$2b$12$3ULdp6VXrEvt2TSszqmxkO6RXaU98vWfoAnhGjwgv3t4CD8f7/cWe"


def rfc3339(t: dt.datetime) -> str:
    """chrono's `to_rfc3339_opts(SecondsFormat::AutoSi, false)` for a UTC time."""
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    us = t.microsecond
    if us == 0:
        frac = ""
    elif us % 1000 == 0:
        frac = ".%03d" % (us // 1000)
    else:
        frac = ".%06d" % us
    return base + frac + "+00:00"


def md5(n: int) -> str:
    return hashlib.md5(str(n).encode()).hexdigest()


def seed(path: str, users: int, posts: int, votes: int) -> None:
    if votes > users * posts:
        sys.exit("votes must be <= users * posts")
    now = dt.datetime.now(dt.timezone.utc)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 10000")
    db.execute("PRAGMA synchronous = OFF")  # this connection only: a load, not a service
    db.execute("PRAGMA cache_size = -262144")
    db.execute("BEGIN IMMEDIATE")
    # The service's triggers record every write in its outbox of live events; a seed is no
    # write anyone follows (1.1 million events by default, which the service would trim in
    # the middle of a later load). They are dropped for the seed, put back as they were, and
    # the outbox emptied, all in this transaction.
    triggers = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                          "AND tbl_name IN ('users', 'posts', 'votes', 'sessions')").fetchall()
    for name, _ in triggers:
        db.execute(f'DROP TRIGGER "{name}"')
    # TRUNCATE ... RESTART IDENTITY: the explicit ids below set the AUTOINCREMENT counters.
    for table in ("votes", "posts", "users"):
        db.execute(f"DELETE FROM {table}")
    has_seq = db.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone()
    if has_seq:
        db.execute("DELETE FROM sqlite_sequence WHERE name IN ('users', 'posts', 'votes')")

    user_start = now - dt.timedelta(days=400)
    # Each account's handle too: the trigger that gives one to an account inserted without
    # is dropped with the others for the seed.
    db.executemany(
        "INSERT INTO users (id, email, password_hash, created_at, handle) VALUES (?, ?, ?, ?, ?)",
        ((g, f"seed{g}@example.org", PASSWORD_HASH,
          rfc3339(user_start + dt.timedelta(seconds=g)), f"user_seed{g}")
         for g in range(1, users + 1)))

    def post_rows():
        for g in range(1, posts + 1):
            at = rfc3339(now - dt.timedelta(minutes=5 * (posts - g)))
            yield (g, f"Post {g} {md5(g)}", (md5(g * 7) + " ") * 8, int(g % 10 != 0),
                   at, at, 1 + (g * 7919) % users)

    db.executemany(
        "INSERT INTO posts (id, title, content, published, created_at, updated_at, owner_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)", post_rows())

    per_user = math.ceil(votes / users)
    db.execute(
        """
        WITH RECURSIVE i(x) AS (SELECT 0 WHERE ?1 > 0
                                UNION ALL SELECT x + 1 FROM i WHERE x < ?1 - 1)
        INSERT INTO votes (user_id, post_id)
        SELECT 1 + x / ?2, 1 + ((x / ?2) * 7919 + x % ?2) % ?3 FROM i
        """, (votes, per_user, posts))
    for _, statement in triggers:
        db.execute(statement)
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone():
        db.execute("DELETE FROM events")
    db.execute("COMMIT")
    db.execute("ANALYZE")  # seed.sql's VACUUM (ANALYZE)
    counts = [db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("users", "posts", "votes")]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print(" users | posts | votes\n %s" % " | ".join(map(str, counts)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", help="path of the SQLite file, already migrated")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--votes", type=int, default=1_000_000)
    args = parser.parse_args()
    started = time.monotonic()
    seed(args.database, args.users, args.posts, args.votes)
    print(f"seeded in {time.monotonic() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
