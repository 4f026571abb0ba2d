-- wrk script for the bare Tornado handler (tests/bench/bare.py): one small JSON POST per request.
wrk.method = "POST"
wrk.path = "/"
wrk.body = '{"purpose":"report_move"}'
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
   io.write(string.format('PERF {"requests":%d,"duration_us":%d,"errors":%d,"p50_ms":%.2f,"p99_ms":%.2f}\n',
      summary.requests, summary.duration,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
      + summary.errors.timeout,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
