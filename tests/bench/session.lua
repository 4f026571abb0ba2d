-- wrk script: whole sessions, one at a time on each connection (run wrk with as
-- many threads as connections, so that each Lua state drives one connection).
--
--   wrk -t8 -c8 -d20s -s session.lua http://127.0.0.1:PORT -- TOKEN_DIR PREFIX [LIMIT]
--
-- A session: start, result posted to attr_url, link_phone, session_info.  Thread N
-- takes its tokens from TOKEN_DIR/N.txt, one per session, and stops when they run
-- out (a "dry" thread: the figure is then too low).  A thread also stops after
-- LIMIT sessions, if given.  Contact ids are PREFIX-N-<session number>.  Any answer
-- but 200 counts as an error and starts a new session.  done() prints one line
-- "PERF {json}" with the counts the Python side reads.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

local json_headers = { ["Content-Type"] = "application/json" }
local jwt_headers = { ["Content-Type"] = "application/jwt" }
local start_body = '{"purpose":"report_move"}'

function init(args)
   prefix, limit = args[2], tonumber(args[3] or "1e12")
   tokens, next_token = {}, 1
   for line in io.lines(args[1] .. "/" .. id .. ".txt") do
      tokens[#tokens + 1] = line
   end
   step, n, dtmf, result_path, contact = "start", 0, nil, nil, nil
   sessions, errors, dry = 0, 0, 0
end

function request()
   if step == "start" then
      return wrk.format("POST", "/start_communication", json_headers, start_body)
   elseif step == "result" then
      local token = tokens[next_token]
      next_token = next_token + 1
      return wrk.format("POST", result_path, jwt_headers, token)
   elseif step == "link" then
      contact = prefix .. "-" .. id .. "-" .. n
      return wrk.format("POST", "/link_phone", json_headers,
                        '{"dtmf":"' .. dtmf .. '","sessionid":"' .. contact .. '"}')
   else
      return wrk.format("GET", "/session_info/" .. contact)
   end
end

function response(status, headers, body)
   if status ~= 200 then
      errors = errors + 1
      step = "start"
      n = n + 1
      return
   end
   if step == "start" then
      dtmf = string.match(body, ',(%d+)"')
      result_path = string.match(body, '(/session_result/%w+)"')
      if next_token > #tokens then  -- the pool ran dry: this thread stops (the figure is then low)
         dry = 1
         step = "link"
         wrk.thread:stop()
      else
         step = "result"
      end
   elseif step == "result" then
      step = "link"
   elseif step == "link" then
      step = "info"
   else
      sessions = sessions + 1
      n = n + 1
      step = "start"
      if sessions >= limit then
         wrk.thread:stop()
      end
   end
end

function done(summary, latency, requests)
   local s, e, d = 0, 0, 0
   for _, thread in ipairs(threads) do
      s = s + thread:get("sessions")
      e = e + thread:get("errors")
      d = d + thread:get("dry")
   end
   io.write(string.format(
      'PERF {"sessions":%d,"errors":%d,"dry_threads":%d,"requests":%d,"duration_us":%d,' ..
      '"socket_errors":%d,"timeouts":%d,"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f}\n',
      s, e, d, summary.requests, summary.duration,
      summary.errors.connect + summary.errors.read + summary.errors.write, summary.errors.timeout,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
