"""Writes wrk Lua scripts for the benchmarks: one request (or a rotation of bodies), and a summary
line at the end."""

import json
import os

SUMMARY = """
done = function(summary, latency, requests)
  io.write(string.format("p50_us=%d p99_us=%d rps=%.0f errors=%d\\n",
    latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
"""


def lua(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def json_call(out_dir, name, target, body):
    """A JSON 1.1 POST with X-Amz-Target `target` (e.g. "AWSCognitoIdentityService.GetId")."""
    with open(os.path.join(out_dir, name), "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {lua(json.dumps(body))}\n")
        f.write('wrk.headers["Content-Type"] = "application/x-amz-json-1.1"\n')
        f.write(f'wrk.headers["X-Amz-Target"] = {lua(target)}\n')
        f.write(SUMMARY)


def json_calls(out_dir, name, target, bodies):
    """Like `json_call`, each request taking the next of `bodies` in turn (per wrk thread)."""
    with open(os.path.join(out_dir, name), "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write('wrk.headers["Content-Type"] = "application/x-amz-json-1.1"\n')
        f.write(f'wrk.headers["X-Amz-Target"] = {lua(target)}\n')
        f.write("bodies = {" + ", ".join(lua(json.dumps(b)) for b in bodies) + "}\n")
        f.write("n = 0\n")
        f.write("request = function()\n  n = n % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[n])\nend\n")
        f.write(SUMMARY)
