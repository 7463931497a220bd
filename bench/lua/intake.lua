-- wrk script: POST unique intake bodies and count answers by status.
local counter = 0
local threads = {}
local families = os.getenv("DOBBY_BENCH_FAMILIES") or '{"runtime.traces":"1.0"}'
local tag = os.getenv("DOBBY_BENCH_TAG") or "bench"

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  created, other = 0, 0
end

function request()
  counter = counter + 1
  local body = '{"tenant_id":"bench","trace_id":"' .. tag .. '-' .. id .. '-' .. counter ..
    '","correlation_id":"c","outcome":"success","guardrail_decision":"ALLOW","family_versions":' .. families ..
    ',"target_hints":[{"type":"prompt_template","id":"p1"}]}'
  return wrk.format("POST", "/api/v1/learning/signals/intake", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 201 then created = created + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local c, o = 0, 0
  for _, thread in ipairs(threads) do
    c = c + thread:get("created")
    o = o + thread:get("other")
  end
  io.write(string.format("RESULT requests=%d created=%d other=%d rps=%.1f p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, c, o, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
