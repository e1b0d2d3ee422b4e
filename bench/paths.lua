-- wrk script: send each path of a file once, one path (one token) per request.
--
--   wrk -t THREADS -s bench/paths.lua URL -- PATHS_FILE THREADS METHOD [BODY] [cycle]
--
-- Every wrk thread runs its own Lua state, so each takes every n-th line of
-- the file (by the thread number setup() hands out; THREADS must equal wrk's
-- -t, as a thread's own Lua state cannot see how many there are): no two threads, and no
-- two requests, ever send the same path. When a thread has sent all of its
-- paths it asks for /__bench_exhausted__ instead (a 404, counted in "exhausted")
-- rather than reuse a token; "cycle" (for the baseline, which has no tokens)
-- starts again from the top instead.
--
-- done() prints one line, "BENCH_JSON {...}", which bench/load.py reads.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   local file = args[1]
   local nthreads = tonumber(args[2])
   method = args[3] or "GET"
   body = args[4]
   if body == "" then
      body = nil
   end
   cycle = args[5] == "cycle"
   headers = {}
   if body then
      headers["Content-Type"] = "application/x-www-form-urlencoded"
   end
   paths = {}
   local i = 0
   for line in io.lines(file) do
      if line ~= "" then
         if i % nthreads == id then
            paths[#paths + 1] = line
         end
         i = i + 1
      end
   end
   sent = 0
   exhausted = 0
end

function request()
   if sent >= #paths then
      if not cycle or #paths == 0 then
         exhausted = exhausted + 1
         return wrk.format("GET", "/__bench_exhausted__")
      end
      sent = sent + 1
      return wrk.format(method, paths[((sent - 1) % #paths) + 1], headers, body)
   end
   sent = sent + 1
   return wrk.format(method, paths[sent], headers, body)
end

function done(summary, latency, requests)
   local total_sent, total_exhausted = 0, 0
   local per_thread = {}
   for _, thread in ipairs(threads) do
      total_sent = total_sent + thread:get("sent")
      total_exhausted = total_exhausted + thread:get("exhausted")
      per_thread[#per_thread + 1] = tostring(thread:get("sent"))
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, '
         .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, '
         .. '"sent": %d, "exhausted": %d, "sent_per_thread": [%s]}\n',
      summary.requests, summary.duration, errors.connect, errors.read, errors.write,
      errors.status, errors.timeout, latency:percentile(50), latency:percentile(99),
      total_sent, total_exhausted, table.concat(per_thread, ", ")))
end
