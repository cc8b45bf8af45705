-- The statements one `GET /posts?limit=10` request of the service sends, in order.
-- Captured by tests/bench/bench.py from PostgreSQL's log: `ALTER DATABASE <db> SET
-- log_statement = 'all'`, one request through the release build, the log's `execute`
-- lines and their `DETAIL: parameters` (see capture_statements). Parameters become
-- pgbench variables, so `pgbench -M prepared` prepares the statements with $n
-- placeholders as the service does. Text parameters, which \set cannot hold, are
-- given on pgbench's command line: one `-- pgbench -D name=value` line each.
-- Captured on 2026-11-30; `tests/bench/run --update-sql` rewrites this file.
\set s1_p1 1
\set s1_p2 1
WITH caller AS (SELECT user_id FROM sessions WHERE id = :s1_p2 AND user_id = :s1_p1) SELECT caller.user_id AS caller_id, page.id, page.title, page.content, page.published, page.created_at, page.updated_at, page.owner_id, page.version, u.id AS author_id, u.email AS author_email, u.created_at AS author_created_at, (SELECT COUNT(*) FROM votes v WHERE v.post_id = page.id) AS votes FROM caller LEFT JOIN (SELECT p.id, p.title, p.content, p.published, p.created_at, p.updated_at, p.owner_id, p.version FROM posts p WHERE (p.published OR p.owner_id = :s1_p1) ORDER BY p.created_at DESC, p.id DESC LIMIT 10 OFFSET 0) page ON TRUE LEFT JOIN users u ON u.id = page.owner_id ORDER BY page.created_at DESC, page.id DESC;
