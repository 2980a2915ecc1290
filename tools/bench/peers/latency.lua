-- wrk script: log every response as
-- "<end time, us since the epoch> <latency us> <status> <closed>" into one file
-- per thread, $PEERS_LOG_PREFIX<thread>.log; <closed> is 1 when the response
-- said "Connection: close" (the server closes the connection after it).
--
-- Run with as many threads as connections (wrk -t N -c N): each thread then
-- has one connection, whose requests and responses strictly alternate, so
-- the time of request() is the start of the response that follows.
-- Latency counts from when the request is handed to the connection (after
-- connect, like wrk's own figure) to the end of the response.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } peers_timespec;
int clock_gettime(int clk_id, peers_timespec *tp);
]]
local ts = ffi.new("peers_timespec")
local function now_us()
  ffi.C.clock_gettime(0, ts) -- CLOCK_REALTIME: the bench's trigger times use the same clock
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local out
local started = 0

function init(args)
  out = assert(io.open(os.getenv("PEERS_LOG_PREFIX") .. id .. ".log", "w"))
end

function request()
  started = now_us()
  return wrk.request()
end

-- Buffered by stdio; wrk's exit flushes every open file.
function response(status, headers, body)
  local t = now_us()
  local c = headers["Connection"] or headers["connection"] or ""
  local closed = (string.lower(c) == "close") and 1 or 0
  out:write(string.format("%d %d %d %d\n", t, t - started, status, closed))
end
