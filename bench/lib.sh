# Shared by the endpoint benchmarks (sourced): checks for wrk, prepares the Python venv, builds
# the release binary, makes a work directory removed on exit, and starts the server in it.
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
venv=compat/.venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/python" -m pip install -q -r compat/requirements.txt; }
# COGNATE_BENCH_BIN runs another build instead (to compare two commits on the same machine).
if [ -n "${COGNATE_BENCH_BIN:-}" ]; then
  bin=$COGNATE_BENCH_BIN
else
  cargo build --release --locked -p cognate >/dev/null 2>&1
  bin=target/release/cognate
fi
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

# start_server PORT-PREFIX: the server on a random port 127.0.0.1:<prefix>NNN with its data in
# $work/data; sets $url and $pid once it is listening.
start_server() {
  local port=$1${RANDOM: -3}
  COGNATE_LOG=${COGNATE_LOG:-info} $bin serve --listen 127.0.0.1:$port --data-dir "$work/data" >"$work/out" 2>"$work/log" &
  echo $! >"$work/pid"
  pid=$(cat "$work/pid")
  for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
  url="http://127.0.0.1:$port/"
}

# wrk_runs LABEL SCRIPT: the wrk Lua SCRIPT at 1 and 64 connections, one summary line each.
wrk_runs() {
  local conns threads
  for conns in 1 64; do
    threads=$(( conns == 1 ? 1 : 2 ))
    echo "$1 connections=$conns: $(wrk -t$threads -c$conns -d${secs}s -s "$2" "$url" | tail -1)"
  done
}
