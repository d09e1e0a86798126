-- wrk script for bench/workers: bench/lua/report.lua's totals, plus how many
-- answers each process gave (its X-Pid header), as wrk.pid.PID=N lines.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  pids = {}
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
  local pid = headers["X-Pid"] or headers["x-pid"] or "none"
  pids[pid] = (pids[pid] or 0) + 1
end

function done(summary, latency, requests)
  local non = 0
  local total = {}
  for _, thread in ipairs(threads) do
    non = non + thread:get("non2xx")
    for pid, count in pairs(thread:get("pids")) do
      total[pid] = (total[pid] or 0) + count
    end
  end
  local e = summary.errors
  io.write(string.format("wrk.duration_us=%d\n", summary.duration))
  io.write(string.format("wrk.requests=%d\n", summary.requests))
  io.write(string.format("wrk.non2xx=%d\n", non))
  io.write(string.format("wrk.errors.connect=%d\n", e.connect))
  io.write(string.format("wrk.errors.read=%d\n", e.read))
  io.write(string.format("wrk.errors.write=%d\n", e.write))
  io.write(string.format("wrk.errors.status=%d\n", e.status))
  io.write(string.format("wrk.errors.timeout=%d\n", e.timeout))
  io.write(string.format("wrk.latency.p50_us=%d\n", latency:percentile(50)))
  io.write(string.format("wrk.latency.p99_us=%d\n", latency:percentile(99)))
  for pid, count in pairs(total) do
    io.write(string.format("wrk.pid.%s=%d\n", pid, count))
  end
end
