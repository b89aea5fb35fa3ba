#!/usr/bin/env bash
# Memory with many idle kept-alive connections: the server's RSS before, with COUNT idle
# HTTP/1.1 connections open (each after one request), and after they close.
#
# usage: bench/connections.sh [count] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-10000}
rounds=${2:-3}
. bench/lib.sh
ulimit -n $(( count * 2 + 1024 ))
for _ in $(seq "$rounds"); do
  port=48${RANDOM: -3}
  rm -rf "$work/data"
  $bin serve --listen 127.0.0.1:$port --data-dir "$work/data" --max-connections $(( count + 100 )) \
    --max-connections-per-ip $(( count + 100 )) --header-timeout-secs 300 >"$work/out" 2>"$work/log" &
  echo $! >"$work/pid"
  for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
  "$venv/bin/python" bench/idle_connections.py 127.0.0.1 $port "$count" "$(cat "$work/pid")"
  kill "$(cat "$work/pid")"; wait "$(cat "$work/pid")" 2>/dev/null || true
done
