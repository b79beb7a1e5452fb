-- wrk script for the overload row: like process_image.lua (each thread stops itself on its
-- first answer after SECONDS and tells the bench through STOPPED_FD, so nothing is cut off in
-- flight), and it also keeps the latency of every 200 answer, since the row reports the p99
-- of the admitted requests only (the shed ones are answered at once and would hide it).
--
--   wrk -t C -c C -d <bound> -s bench/overload.lua URL -- IMAGE SECONDS STOPPED_FD

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } overload_timespec;
  int clock_gettime(int clock_id, overload_timespec *tp);
  long write(int fd, const char *buf, unsigned long count);
]]
local timespec = ffi.new("overload_timespec")
local function now()
  ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local req, deadline, stopped_fd, stopped, sent_at
first, last, ok, shed, other, admitted_ms = nil, nil, 0, 0, 0, ""
local latencies = {}

function init(args)
  local path, seconds = args[1], tonumber(args[2])
  stopped_fd = tonumber(args[3])
  local file = assert(io.open(path, "rb"))
  local image = file:read("*a")
  file:close()
  local boundary = "----overload" .. tostring(math.random(1e9))
  local body = table.concat({
    "--", boundary, "\r\n",
    'Content-Disposition: form-data; name="image"; filename="image.jpg"\r\n',
    "Content-Type: image/jpeg\r\n\r\n", image, "\r\n",
    "--", boundary, "--\r\n",
  })
  req = wrk.format("POST", "/process_image?pipeline_id=1",
    { ["Content-Type"] = "multipart/form-data; boundary=" .. boundary }, body)
  deadline = now() + seconds
end

function request()
  sent_at = now()
  if first == nil then first = sent_at end
  return req
end

function response(status, headers, body)
  last = now()
  if status == 200 then
    ok = ok + 1
    table.insert(latencies, string.format("%.1f", (last - sent_at) * 1000))
    admitted_ms = table.concat(latencies, ",")
  elseif status == 503 then
    shed = shed + 1
  else
    other = other + 1
  end
  if last >= deadline and not stopped then
    stopped = true
    wrk.thread:stop()
    ffi.C.write(stopped_fd, "x", 1)
  end
end

function done(summary, latency, requests)
  local total_ok, total_shed, total_other, started, ended, all_ms = 0, 0, 0, nil, nil, {}
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_shed = total_shed + thread:get("shed")
    total_other = total_other + thread:get("other")
    local first, last = thread:get("first"), thread:get("last")
    if first and (started == nil or first < started) then started = first end
    if last and (ended == nil or last > ended) then ended = last end
    local ms = thread:get("admitted_ms")
    if ms ~= "" then table.insert(all_ms, ms) end
  end
  local e = summary.errors
  io.write(string.format(
    'OVERLOAD {"ok": %d, "shed": %d, "other": %d, "socket_errors": %d, "seconds": %.4f, ' ..
    '"admitted_ms": [%s]}\n',
    total_ok, total_shed, total_other, e.connect + e.read + e.write + e.timeout,
    (ended or 0) - (started or 0), table.concat(all_ms, ",")))
end
