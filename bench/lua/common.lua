-- Shared by the wrk scripts of bench/run.sh: thread numbering, reading lists, and the result as one JSON line.
local M = {}

-- The lines of a file (empty ones skipped); with a thread count and index, only this thread's share.
function M.lines(path, threads, index)
  local all, mine = {}, {}
  for line in io.lines(path) do
    if line ~= "" then all[#all + 1] = line end
  end
  threads, index = threads or 1, index or 0
  for i = 1 + index, #all, threads do mine[#mine + 1] = all[i] end
  return mine
end

function M.env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then error(name .. " is not set") end
  return value
end

-- Numbers the threads (setup runs in the main state, once a thread).
local created = 0
function M.setup(thread)
  thread:set("thread_index", created)
  created = created + 1
end

-- One line "BENCH {...}": requests, seconds, req/s, latency percentiles (ms), HTTP >= 400 and socket errors.
function M.done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'BENCH {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"http_errors":%d,"socket_errors":%d}\n',
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end

return M
