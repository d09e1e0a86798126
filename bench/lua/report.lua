-- wrk script for bench/zero-downtime: counts every answer outside 2xx (wrk's own
-- "Non-2xx or 3xx" figure only counts status > 399) and prints the totals as
-- key=value lines that the script parses.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local non = 0
  for _, thread in ipairs(threads) do
    non = non + thread:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format("wrk.duration_us=%d\n", summary.duration))
  io.write(string.format("wrk.requests=%d\n", summary.requests))
  io.write(string.format("wrk.bytes=%d\n", summary.bytes))
  io.write(string.format("wrk.non2xx=%d\n", non))
  io.write(string.format("wrk.errors.connect=%d\n", e.connect))
  io.write(string.format("wrk.errors.read=%d\n", e.read))
  io.write(string.format("wrk.errors.write=%d\n", e.write))
  io.write(string.format("wrk.errors.status=%d\n", e.status))
  io.write(string.format("wrk.errors.timeout=%d\n", e.timeout))
  io.write(string.format("wrk.latency.p50_us=%d\n", latency:percentile(50)))
  io.write(string.format("wrk.latency.p99_us=%d\n", latency:percentile(99)))
  io.write(string.format("wrk.latency.max_us=%d\n", latency.max))
end
