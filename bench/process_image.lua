-- wrk script: POST /process_image with a multipart image, one connection per wrk thread.
--
--   wrk -t C -c C -d <safety bound> -s bench/process_image.lua URL -- IMAGE SECONDS STOPPED_FD [LIMIT [PIPELINE_ID]]
--
-- Each thread stops itself on the first answer after SECONDS (or after LIMIT answers, when
-- given) and writes one byte to
-- STOPPED_FD; the bench then ends wrk (SIGINT). So no request is left in flight: every
-- request the server saw was answered and counted, and the bench can compare PostgreSQL's
-- rows with the 200 answers. done() prints one JSON line, "BENCH {...}",
-- with the answers by status, socket errors, the measured window, mean latency and percentiles.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
  long write(int fd, const char *buf, unsigned long count);
]]
local timespec = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC, shared by all threads
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local req, deadline, stopped_fd, stopped, limit
first, last, ok, failed, statuses = nil, nil, 0, 0, ""
local by_status = {}

function init(args)
  local path, seconds = args[1], tonumber(args[2])
  stopped_fd = tonumber(args[3])
  limit = tonumber(args[4] or "0")
  local pipeline_id = args[5] or "1"
  local file = assert(io.open(path, "rb"))
  local image = file:read("*a")
  file:close()
  local boundary = "----bench" .. tostring(math.random(1e9))
  local body = table.concat({
    "--", boundary, "\r\n",
    'Content-Disposition: form-data; name="image"; filename="image.jpg"\r\n',
    "Content-Type: image/jpeg\r\n\r\n", image, "\r\n",
    "--", boundary, "--\r\n",
  })
  req = wrk.format("POST", "/process_image?pipeline_id=" .. pipeline_id,
    { ["Content-Type"] = "multipart/form-data; boundary=" .. boundary }, body)
  deadline = now() + seconds
end

function request()
  if first == nil then first = now() end
  return req
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    failed = failed + 1
    by_status[status] = (by_status[status] or 0) + 1
    local parts = {}
    for code, count in pairs(by_status) do table.insert(parts, code .. ":" .. count) end
    statuses = table.concat(parts, ",")
  end
  last = now()
  if (last >= deadline or (limit > 0 and ok + failed >= limit)) and not stopped then
    stopped = true
    wrk.thread:stop()
    ffi.C.write(stopped_fd, "x", 1) -- tells the bench this thread has nothing in flight
  end
end

function done(summary, latency, requests)
  local total_ok, total_failed, started, ended, all_statuses = 0, 0, nil, nil, {}
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_failed = total_failed + thread:get("failed")
    local first, last = thread:get("first"), thread:get("last")
    if first and (started == nil or first < started) then started = first end
    if last and (ended == nil or last > ended) then ended = last end
    local s = thread:get("statuses")
    if s ~= "" then table.insert(all_statuses, s) end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"ok": %d, "failed": %d, "statuses": "%s", "socket_errors": %d, "seconds": %.4f, ' ..
    '"mean_ms": %.3f, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    total_ok, total_failed, table.concat(all_statuses, ","),
    e.connect + e.read + e.write + e.timeout, (ended or 0) - (started or 0),
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
