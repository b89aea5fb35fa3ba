#!/usr/bin/env bash
# Cognito Sync benchmark: UpdateRecords with wrk (each request a different write, signed
# beforehand), the live channel's write-to-push latency while that load runs, and the server's
# memory with 10,000 idle live channels open.
#
# usage: bench/sync.sh [seconds-per-run] [rounds]   (needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-3}
. bench/lib.sh
ulimit -n 30000 2>/dev/null || true
COGNATE_LOG=warn start_server 47
creds="$work/data/root-credentials"
export PYTHONPATH=bench
echo "idle server: $("$venv/bin/python" bench/sync_live.py "$url" "$creds" latency 100 0.02)"
for round in $(seq "$rounds"); do
  for conns in 1 64; do
    threads=$(( conns == 1 ? 1 : 2 ))
    count=$(( conns == 1 ? 60000 : 60000 ))
    "$venv/bin/python" bench/sync_setup.py "$url" "$creds" "$work" "$count" 4 >/dev/null
    if [ "$conns" = 64 ]; then
      # Write-to-push latency while wrk runs (it starts after a second, ends before wrk).
      (sleep 1; "$venv/bin/python" bench/sync_live.py "$url" "$creds" latency $(( secs * 10 - 30 )) 0.05) &
      live=$!
    fi
    echo "round $round UpdateRecords connections=$conns: $(wrk -t$threads -c$conns -d${secs}s -s "$work/update.lua" "$url" -- $threads | tail -1)"
    if [ "$conns" = 64 ]; then wait $live; fi
  done
done
"$venv/bin/python" bench/sync_live.py "$url" "$creds" idle 10000 "$pid"
