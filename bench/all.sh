#!/usr/bin/env bash
# Every endpoint benchmark, one after another, each run ROUNDS times (the spread BENCHMARKS.md
# reports): STS, S3, user pools, identity pools, HTTPS, idle connections, Cognito Sync. One release build serves
# them all (COGNATE_BENCH_BIN, as in lib.sh, runs another build instead).
#
# usage: bench/all.sh [seconds-per-run] [rounds]   (needs wrk and curl)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-3}
if [ -z "${COGNATE_BENCH_BIN:-}" ]; then
  cargo build --release --locked -p cognate >/dev/null 2>&1
  export COGNATE_BENCH_BIN=$PWD/target/release/cognate
fi
for round in $(seq "$rounds"); do
  echo "# round $round of $rounds"
  bash bench/server.sh "$secs"
  bash bench/s3.sh "$secs" 256
  bash bench/userpool.sh "$secs"
  bash bench/identitypool.sh "$secs"
  bash bench/tls.sh "$secs"
done
bash bench/connections.sh 10000 "$rounds"
# Cognito Sync runs its own rounds (write-to-push latency is measured beside the load).
bash bench/sync.sh "$secs" "$rounds"
