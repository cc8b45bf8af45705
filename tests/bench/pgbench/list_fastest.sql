-- The fastest one-statement formulation of one `GET /posts?limit=10` request, for pgbench
-- (`-M prepared -c 16 -j 2`; tests/bench/bench.py runs it beside list_service.sql, the
-- statements the service really sends). The caller check is folded in: no row when the
-- caller's account is gone, one row of NULLs when it exists but sees no post. The page comes
-- newest first from idx_posts_created_at_id with a literal LIMIT 10, each post with its
-- owner and vote count. Caller: seed user 1, as in the HTTP loads.
-- Tried and within noise of it (±10 % on 2 cores): the page as a LEFT JOIN LATERAL on the
-- caller, as a plain subquery joined to the caller, and the caller as an EXISTS column.
\set uid 1
WITH page AS MATERIALIZED (SELECT id, title, content, published, created_at, updated_at, owner_id FROM posts WHERE published OR owner_id = :uid ORDER BY created_at DESC, id DESC LIMIT 10) SELECT c.id AS caller_id, p.id, p.title, p.content, p.published, p.created_at, p.updated_at, p.owner_id, u.email AS owner_email, u.created_at AS owner_created_at, (SELECT count(*) FROM votes v WHERE v.post_id = p.id) AS votes FROM users c LEFT JOIN page p ON true LEFT JOIN users u ON u.id = p.owner_id WHERE c.id = :uid ORDER BY p.created_at DESC, p.id DESC;
