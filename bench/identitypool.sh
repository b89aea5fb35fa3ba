#!/usr/bin/env bash
# Identity pool benchmark: GetCredentialsForIdentity (user pool ID token verified, identity
# and logins read, trust policy evaluated, a session token sealed) and GetId with wrk.
#
# usage: bench/identitypool.sh [seconds-per-run]   (needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
venv=compat/.venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/python" -m pip install -q -r compat/requirements.txt; }
cargo build --release --locked -p cognate >/dev/null 2>&1

work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
port=47${RANDOM: -3}
target/release/cognate serve --listen 127.0.0.1:$port --data-dir "$work/data" >"$work/out" 2>"$work/log" &
echo $! >"$work/pid"
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
url="http://127.0.0.1:$port/"
"$venv/bin/python" bench/identitypool_setup.py "$url" "$work/data/root-credentials" "$work"
for conns in 1 64; do
  threads=$(( conns == 1 ? 1 : 2 ))
  echo "GetCredentialsForIdentity connections=$conns: $(wrk -t$threads -c$conns -d${secs}s -s "$work/credentials.lua" "$url" | tail -1)"
done
for conns in 1 64; do
  threads=$(( conns == 1 ? 1 : 2 ))
  echo "GetId connections=$conns: $(wrk -t$threads -c$conns -d${secs}s -s "$work/getid.lua" "$url" | tail -1)"
done
