-- The requests of the bench's cases of scale (issue 16), for wrk: lists and
-- searches whose answers the server cannot have kept, and paging by the
-- Link header's next link.
--
-- The bench passes, after "--": the case, the API key, and the case's
-- parameter:
--
--   pages    "LO,HI,TEMPLATE": GET /api/v1/tutorials?TEMPLATE, where {page}
--            runs from LO to HI and {junk} is a run of dashes that changes
--            every time {page} starts over. A q of "--- a" searches for
--            exactly what "a" does ("-" holds no letter: it is no word),
--            but it is another query to the server's answer cache: so no
--            request of a run is answered from memory.
--   follow   "PATH": GET PATH, then the next link of each answer in turn,
--            and PATH again once there is none.
--   mixed    "LO,HI,T1|T2|...": as pages, each request the next template.
--   detail   "ROWS": GET /api/v1/tutorials/tutorial-N, N rotating.
--   path     "PATH": GET PATH, always.

local case, key, param
local i = 0
local lo, hi, templates
local start, nextPath

function init(args)
   case, key, param = args[1], args[2], args[3]
   wrk.headers["Authorization"] = "Bearer " .. key
   if case == "pages" or case == "mixed" then
      local l, h, rest = string.match(param, "^(%d+),(%d+),(.*)$")
      lo, hi = tonumber(l), tonumber(h)
      templates = {}
      for t in string.gmatch(rest, "[^|]+") do
         table.insert(templates, t)
      end
   elseif case == "follow" then
      start = param
      nextPath = param
   end
end

-- fill writes the n-th request of a template.
local function fill(template, n)
   local span = hi - lo + 1
   local page = lo + (n % span)
   local junk = string.rep("-", math.floor(n / span) % 150)
   if junk ~= "" then
      junk = junk .. "+"
   end
   return (string.gsub(string.gsub(template, "{page}", tostring(page)), "{junk}", junk))
end

function request()
   i = i + 1
   if case == "pages" then
      return wrk.format("GET", "/api/v1/tutorials?" .. fill(templates[1], i))
   elseif case == "mixed" then
      local t = templates[(i % #templates) + 1]
      return wrk.format("GET", "/api/v1/tutorials?" .. fill(t, math.floor(i / #templates)))
   elseif case == "follow" then
      return wrk.format("GET", nextPath)
   elseif case == "detail" then
      return wrk.format("GET", "/api/v1/tutorials/tutorial-" .. ((i * 7919) % tonumber(param) + 1))
   elseif case == "path" then
      return wrk.format("GET", param)
   end
   error("unknown case " .. tostring(case))
end

-- response follows the next link, for the follow case; the other cases
-- do not look at answers.
function response(status, headers, body)
   if case ~= "follow" then
      return
   end
   local link = headers["Link"] or ""
   local url = string.match(link, '<([^>]*)>; rel="next"')
   if status ~= 200 or url == nil then
      nextPath = start
   else
      nextPath = string.match(url, "^https?://[^/]+(/.*)$")
   end
end

-- done prints one line that the bench program reads, as wrk.lua's does.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
