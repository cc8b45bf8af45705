-- One wrk script for every load of the benchmark (tests/bench/bench.py drives it).
--
-- Environment:
--   BENCH_SCENARIO  get       the URL's path as given (GET /posts?limit=10, ...; a cursor
--                             page's path is the `Link` bench.py read from the server)
--                   get_id    GET /posts/{id}, ids walking over the seed's published posts
--                   create    POST /posts with a JSON body
--                   vote      POST /vote, dir 1 and 0 alternating, each on distinct posts
--                   login     POST /login (form), seed users in turn
--   BENCH_TOKEN     bearer token for every scenario but login
--   BENCH_TOKENS    comma-separated tokens of many accounts (create, vote): each request
--                   carries the next account's, so every connection writes as each in turn
--   BENCH_POSTS     how many posts the seed made (get_id, vote)
--   BENCH_USERS     how many users the seed made (login)
--   BENCH_THREADS, BENCH_CONNECTIONS  wrk's -t and -c
--   BENCH_OUT       file the summary goes to, as one JSON object
--
-- Status codes of 400 and above are counted by wrk as "status" errors: the table's non-2xx.

local scenario = os.getenv("BENCH_SCENARIO") or "get"
local token = os.getenv("BENCH_TOKEN")
local seed_posts = tonumber(os.getenv("BENCH_POSTS") or "1000")
local seed_users = tonumber(os.getenv("BENCH_USERS") or "100")
local out_path = os.getenv("BENCH_OUT")
local tokens = {}
for t in string.gmatch(os.getenv("BENCH_TOKENS") or "", "[^,]+") do
   tokens[#tokens + 1] = t
end

if token and token ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. token
end

-- Threads get distinct ids, so their id sequences do not overlap.
local thread_count = 0
function setup(thread)
   thread:set("tid", thread_count)
   thread_count = thread_count + 1
end

local nthreads = 1
local k = 0
local LAG = 128  -- see the votes below
-- wrk calls request() once in thread 0 before the run to inspect it and drops the result;
-- so the first call of every thread returns a harmless GET, and sequences start after it.
local first = true
local function skip_first()
   if first then
      first = false
      return wrk.format("GET", "/health", {})
   end
end

function init(args)
   nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
   if tid == nil then tid = 0 end
   local per_thread = math.floor((seed_posts - math.floor(seed_posts / 10)) / nthreads)
   local conns = math.ceil(tonumber(os.getenv("BENCH_CONNECTIONS") or "64") / nthreads)
   LAG = math.max(1, math.min(math.max(LAG, 4 * conns), math.floor(per_thread / 2)))
end

-- The n-th published seed post of this thread (every 10th seed post is someone's draft).
local function published_post(n)
   local published = seed_posts - math.floor(seed_posts / 10)
   local j = (n * nthreads + tid) % published      -- 0-based index among published posts
   return j + math.floor(j / 9) + 1                 -- skip ids that are multiples of 10
end

-- Votes: the first LAG requests add; then adds and removes alternate, each remove taking
-- the oldest vote this thread added, LAG adds earlier. The lag is well beyond the number
-- of requests a thread has in flight (its connections), so a remove never overtakes its add.
-- With many accounts, the n-th add and the n-th remove go as the same account (account_of),
-- so a remove still follows its own add by LAG; the post alone already keeps threads and
-- a thread's votes apart, so no two votes in flight share an (account, post) pair.
local added, removed = 0, 0

-- wrk.format uses the headers it is given instead of wrk.headers: the token goes in each set.
local json_headers = {["Content-Type"] = "application/json", ["Authorization"] = wrk.headers["Authorization"]}
-- One set per account of BENCH_TOKENS (none: json_headers, BENCH_TOKEN's).
local account_headers = {}
for i, t in ipairs(tokens) do
   account_headers[i] = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. t}
end

-- The headers of this thread's n-th write: the accounts in turn, over the threads' requests
-- taken together (as published_post spreads posts), so that every account writes.
local function account_of(n)
   if #account_headers == 0 then return json_headers end
   return account_headers[(n * nthreads + tid) % #account_headers + 1]
end
local login_headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
local content = string.rep("Benchmark content, a few words long. ", 5)

request = nil
if scenario == "get_id" then
   request = function()
      k = k + 1
      -- a stride that scatters consecutive requests over the table
      local id = published_post((k * 7919) % 1000003)
      return wrk.format("GET", "/posts/" .. id)
   end
elseif scenario == "create" then
   request = function()
      k = k + 1
      local body = string.format('{"title": "Bench post %d-%d", "content": "%s"}', tid, k, content)
      return wrk.format("POST", "/posts", account_of(k), body)
   end
elseif scenario == "vote" then
   request = function()
      local health = skip_first()
      if health then return health end
      local dir
      local n
      if added < LAG or (added + removed) % 2 == 0 then
         n = added
         added = added + 1
         dir = 1
      else
         n = removed
         removed = removed + 1
         dir = 0
      end
      local body = string.format('{"post_id": %d, "dir": %d}', published_post(n), dir)
      return wrk.format("POST", "/vote", account_of(n), body)
   end
elseif scenario == "login" then
   request = function()
      k = k + 1
      local user = 1 + ((k * 31 + tid * 7) % seed_users)
      local body = "username=seed" .. user .. "%40example.org&password=password123"
      return wrk.format("POST", "/login", login_headers, body)
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local json = string.format(
      '{"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
      '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, ' ..
      '"p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean)
   if out_path and out_path ~= "" then
      local f = assert(io.open(out_path, "w"))
      f:write(json)
      f:close()
   else
      io.write(json)
   end
end
