#!/usr/bin/env bash
# HTTPS against plain HTTP: signed GetCallerIdentity throughput and latency at 1 and 64
# connections, the same release build serving plain HTTP and then --tls-dev, alternately
# (three rounds each), against one data directory. wrk keeps its connections open, so this is
# the cost of TLS records on kept-alive connections, not of handshakes.
#
# usage: bench/tls.sh [seconds-per-run]   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
. bench/lib.sh

serve() {
  local port=$1 scheme=$2
  shift 2
  $bin serve --listen 127.0.0.1:$port --data-dir "$work/data" "$@" >"$work/out" 2>"$work/log" &
  echo $! >"$work/pid"
  for _ in $(seq 200); do grep -q "root key" "$work/out" 2>/dev/null && break; sleep 0.05; done
  url="$scheme://127.0.0.1:$port/"
}
stop() { kill "$(cat "$work/pid")"; wait "$(cat "$work/pid")" 2>/dev/null || true; }

for round in 1 2 3; do
  for scheme in http https; do
    port=46${RANDOM: -3}
    if [ "$scheme" = https ]; then serve $port https --tls-dev; else serve $port http; fi
    "$venv/bin/python" bench/signed_request.py "$url" "$work/data/root-credentials" GetCallerIdentity >"$work/script.lua"
    wrk_runs "round=$round $scheme GetCallerIdentity" "$work/script.lua"
    stop
  done
done
