-- wrk script: count only the answers that arrive after the warm-up, on the same connections.
-- wrk keeps its connections open for the whole run, as locust does from its warm-up to its
-- window; this script gives the window's count, which wrk's own summary (whole run) does not.
-- WRK_WARMUP: seconds from each wrk thread's start to the window. LuaJIT's ffi reads a
-- monotonic clock (os.time() counts whole seconds only).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } wrk_window_timespec;
int clock_gettime(int clock_id, wrk_window_timespec *tp);
]]
local CLOCK_MONOTONIC = 1

local function now()
  local t = ffi.new("wrk_window_timespec")
  ffi.C.clock_gettime(CLOCK_MONOTONIC, t)
  return tonumber(t.tv_sec) + tonumber(t.tv_nsec) / 1e9
end

local warmup = tonumber(os.getenv("WRK_WARMUP") or "0")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  window_start = now() + warmup
  answered, failed = 0, 0
end

function response(status, headers, body)
  if now() >= window_start then
    answered = answered + 1
    if status >= 400 then
      failed = failed + 1
    end
  end
end

function done(summary, latency, requests)
  local answers, failures, start = 0, 0, nil
  for _, thread in ipairs(threads) do
    answers = answers + thread:get("answered")
    failures = failures + thread:get("failed")
    local begun = thread:get("window_start")
    if start == nil or begun < start then
      start = begun
    end
  end
  io.write(string.format("window: %d answers, %d not 2xx/3xx, in %.3f s\n",
                         answers, failures, now() - start))
end
