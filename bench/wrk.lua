-- The requests of every benchmark case, for wrk (https://github.com/wg/wrk).
--
-- wrk runs one copy of this script per thread. The bench program passes,
-- after "--": the case, the API key, the number of seeded tutorials, and a
-- tag unique to this run (so that the slugs of POST never collide with an
-- earlier run's). Everything a request needs is built here, in wrk's own
-- threads, so that the load generator stays cheap.

local threads = 0

-- setup runs once per thread, in the main state: give each thread a number,
-- so that the threads rotate over different slugs and create different ones.
function setup(thread)
   thread:set("thread_id", threads)
   threads = threads + 1
end

local case, key, seeded, tag
local i = 0
local content = string.rep("Benchmarks measure; they do not guess. ", 52) -- about 2 KB

function init(args)
   case, key, seeded, tag = args[1], args[2], tonumber(args[3]), args[4]
   -- Start each thread at a different place among the slugs.
   i = (thread_id * 7919) % seeded
   wrk.headers["Authorization"] = "Bearer " .. key
   if case == "create" or case == "patch" then
      wrk.headers["Content-Type"] = "application/json"
   end
end

function request()
   i = i + 1
   if case == "baseline" then
      return wrk.format("GET", "/")
   elseif case == "list" then
      return wrk.format("GET", "/api/v1/tutorials")
   elseif case == "detail" then
      return wrk.format("GET", "/api/v1/tutorials/tutorial-" .. (i % seeded + 1))
   elseif case == "create" then
      local slug = string.format("bench-%s-%d-%d", tag, thread_id, i)
      local body = string.format(
         '{"title":"Created %s","slug":"%s","excerpt":"Made by the benchmark.","content":"%s","category":"bench","difficulty":"advanced","estimated_time":%d}',
         slug, slug, content, i % 120)
      return wrk.format("POST", "/api/v1/tutorials", nil, body)
   elseif case == "patch" then
      local body = string.format('{"estimated_time":%d}', i % 120)
      return wrk.format("PATCH", "/api/v1/tutorials/tutorial-" .. (i % seeded + 1), nil, body)
   end
   error("unknown case " .. tostring(case))
end

-- done prints one line that the bench program reads: latencies in
-- microseconds, and every kind of error wrk counts. "status" is any answer
-- that is not 2xx or 3xx.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
