-- wrk script for the overload scenario: POST the JSON body in $BENCH_BODY and measure every answer's
-- latency by its status, which wrk's own latency table cannot (it mixes the quick 503s of shed
-- requests with the answered ones). Each request carries its send time in X-Request-ID, which
-- modelward echoes in every answer (200 and 503 alike); the response callback subtracts it from the
-- time of arrival. Latencies go into log-spaced buckets (2% wide) per status class; done() merges the
-- threads' buckets and prints one machine-readable summary line.
-- Used by benchmarks/overload.py as: BENCH_BODY='{...}' wrk -s overload.lua -c N -d Ts URL
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } mw_timespec;
int clock_gettime(int clk, mw_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("mw_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

local WIDTH = math.log(1.02)
local body = os.getenv("BENCH_BODY") or "{}"
local threads = {}
-- Per thread (globals, read by done() through thread:get, which copies flat tables only):
-- <class>_buckets[index] = count and counts[class] = count, for the classes "ok" (2xx), "shed" (503)
-- and "other" (any other status); no_retry_after counts 503s without Retry-After, unmatched the
-- answers without our id.
ok_buckets, shed_buckets, other_buckets = {}, {}, {}
local buckets = { ok = ok_buckets, shed = shed_buckets, other = other_buckets }
counts = { ok = 0, shed = 0, other = 0 }
no_retry_after = 0
unmatched = 0
local seq = 0

function setup(thread)
  table.insert(threads, thread)
end

function request()
  seq = seq + 1
  local headers = { ["Content-Type"] = "application/json", ["X-Request-ID"] = "t" .. now_us() .. "." .. seq }
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, _)
  local id = headers["x-request-id"] or headers["X-Request-ID"]
  local sent = id and tonumber(string.match(id, "^t(%d+)%."))
  local class = (status >= 200 and status < 300) and "ok" or (status == 503 and "shed" or "other")
  counts[class] = counts[class] + 1
  if class == "shed" and headers["retry-after"] == nil and headers["Retry-After"] == nil then
    no_retry_after = no_retry_after + 1
  end
  if not sent then
    unmatched = unmatched + 1
    return
  end
  local us = math.max(1, now_us() - sent)
  local index = math.floor(math.log(us) / WIDTH)
  local b = buckets[class]
  b[index] = (b[index] or 0) + 1
end

local function percentile(merged, total, q)
  if total == 0 then
    return 0
  end
  local keys = {}
  for k in pairs(merged) do
    table.insert(keys, k)
  end
  table.sort(keys)
  local want, seen = math.ceil(total * q / 100), 0
  for _, k in ipairs(keys) do
    seen = seen + merged[k]
    if seen >= want then
      return math.exp((k + 1) * WIDTH) -- the bucket's upper edge: never below the true value
    end
  end
  return math.exp((keys[#keys] + 1) * WIDTH)
end

function done(summary, latency, _)
  local merged = { ok = {}, shed = {}, other = {} }
  local total = { ok = 0, shed = 0, other = 0 }
  local timed = { ok = 0, shed = 0, other = 0 }
  local missing, unmatched_all = 0, 0
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for class, m in pairs(merged) do
      total[class] = total[class] + c[class]
      for k, n in pairs(thread:get(class .. "_buckets")) do
        m[k] = (m[k] or 0) + n
        timed[class] = timed[class] + n
      end
    end
    missing = missing + thread:get("no_retry_after")
    unmatched_all = unmatched_all + thread:get("unmatched")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "non_2xx": %d, "timeouts": %d, ' ..
    '"p50_us": %.1f, "p90_us": %.1f, "p99_us": %.1f, "max_us": %.1f, "mean_us": %.1f, ' ..
    '"ok": %d, "shed": %d, "other": %d, "shed_without_retry_after": %d, "unmatched": %d, ' ..
    '"ok_p50_us": %.1f, "ok_p99_us": %.1f, "ok_max_us": %.1f, "shed_p50_us": %.1f, "shed_p99_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, total.ok, total.shed, total.other, missing, unmatched_all,
    percentile(merged.ok, timed.ok, 50), percentile(merged.ok, timed.ok, 99),
    percentile(merged.ok, timed.ok, 100), percentile(merged.shed, timed.shed, 50),
    percentile(merged.shed, timed.shed, 99)))
end
