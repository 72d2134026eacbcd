-- Counts response statuses in 100 ms wall-clock buckets, so the benchmark can
-- tell errors during an outage from errors after the backends came back.
-- A response() hook makes wrk hand every response to Lua: use it only for the
-- failover runs, never for the throughput figures.
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_REALTIME = 0
local BUCKET_MS = 100
local now = ffi.new("bench_timespec")

local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

init = function(args)
  counts = {}
end

response = function(status, headers, body)
  ffi.C.clock_gettime(CLOCK_REALTIME, now)
  local ms = tonumber(now.tv_sec) * 1000 + math.floor(tonumber(now.tv_nsec) / 1000000)
  local key = math.floor(ms / BUCKET_MS) .. "/" .. status
  counts[key] = (counts[key] or 0) + 1
end

done = function(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get("counts")) do
      merged[key] = (merged[key] or 0) + n
    end
  end
  local parts = {}
  for key, n in pairs(merged) do
    table.insert(parts, string.format('"%s": %d', key, n))
  end
  io.write('BENCH_STATUSES {"bucket_ms": ' .. BUCKET_MS .. ', "counts": {'
    .. table.concat(parts, ", ") .. '}}\n')
  local e = summary.errors
  io.write(string.format(
    'BENCH_SUMMARY {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"status_errors": %d, "timeout_errors": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
