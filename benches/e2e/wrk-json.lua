-- wrk script for benches/e2e/run.sh: at the end of a run, prints one JSON
-- object (after a line "JSON") in the shape report.py reads: duration and
-- mean latency in seconds, percentiles in seconds, 2xx/non-2xx counts and
-- socket errors. wrk counts any response that is not 2xx/3xx in status.
done = function(summary, latency, requests)
  local e = summary.errors
  local ok = summary.requests - e.status
  io.write("JSON\n")
  io.write(string.format(
    '{"summary":{"total":%.6f,"average":%.9f},' ..
    '"statusCodeDistribution":{"2xx":%d,"other":%d},' ..
    '"errorDistribution":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
    '"latencyPercentiles":{"p50":%.9f,"p90":%.9f,"p99":%.9f}}\n',
    summary.duration / 1e6, latency.mean / 1e6,
    ok, e.status,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1e6, latency:percentile(90) / 1e6,
    latency:percentile(99) / 1e6))
end
