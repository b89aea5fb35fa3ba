#!/usr/bin/env bash
# S3 benchmark: signed GetObject of a 4 KiB object at 1 and 64 connections (wrk), then a
# large object PUT and GET through presigned URLs (curl), with the server's peak RSS.
#
# usage: bench/s3.sh [seconds-per-run] [large-object-MiB]   (needs wrk and curl)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
large_mib=${2:-1024}
. bench/lib.sh
start_server 46
"$venv/bin/python" bench/s3_setup.py "$url" "$work/data/root-credentials" "$work"
wrk_runs "GetObject 4KiB" "$work/get.lua"
echo "rss_after_small_kib=$(ps -o rss= -p "$pid" | tr -d ' ')"

head -c $((large_mib * 1024 * 1024)) /dev/urandom >"$work/large.bin"
timed() {
  local start end
  start=$(date +%s.%N); "$@"; end=$(date +%s.%N)
  echo "$start $end" | awk -v mib="$large_mib" '{ s = $2 - $1; printf "%.2f s, %.0f MiB/s", s, mib / s }'
}
echo "PUT ${large_mib}MiB (presigned, streamed): $(timed curl -sf -o /dev/null -T "$work/large.bin" "$(cat "$work/put_url")")"
echo "GET ${large_mib}MiB (presigned, streamed): $(timed curl -sf -o "$work/back.bin" "$(cat "$work/get_url")")"
cmp -s "$work/large.bin" "$work/back.bin" && echo "large object round trip: bytes match" || { echo "large object bytes differ" >&2; exit 1; }
echo "peak_rss_kib=$(grep VmHWM /proc/$pid/status | awk '{print $2}')"
