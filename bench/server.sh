#!/usr/bin/env bash
# Endpoint benchmark: start-up time, idle memory, and signed GetCallerIdentity throughput and
# latency at 1 and 64 connections, against a release build on this machine.
#
# usage: bench/server.sh [seconds-per-run]   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
. bench/lib.sh
port=45${RANDOM: -3}
log_level=${COGNATE_LOG:-info}

# Start-up: from exec to the listening banner, on a fresh data dir and on an existing one.
startup() {
  "$venv/bin/python" - "$@" <<'PY'
import subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
p.stdout.readline()
print(f"{(time.perf_counter() - t) * 1000:.1f}")
p.terminate(); p.wait()
PY
}
echo "startup_fresh_ms=$(startup $bin serve --listen 127.0.0.1:$port --data-dir "$work/fresh")"
echo "startup_existing_ms=$(startup $bin serve --listen 127.0.0.1:$port --data-dir "$work/fresh")"

COGNATE_LOG=$log_level $bin serve --listen 127.0.0.1:$port --data-dir "$work/data" >"$work/out" 2>"$work/log" &
echo $! >"$work/pid"
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
sleep 1
echo "idle_rss_kib=$(ps -o rss= -p "$(cat "$work/pid")" | tr -d ' ')"

"$venv/bin/python" bench/signed_request.py "http://127.0.0.1:$port/" "$work/data/root-credentials" GetCallerIdentity >"$work/script.lua"
echo "log_level=$log_level"
for conns in 1 64; do
  threads=$(( conns == 1 ? 1 : 2 ))
  echo "GetCallerIdentity connections=$conns: $(wrk -t$threads -c$conns -d${secs}s -s "$work/script.lua" "http://127.0.0.1:$port/" | tail -1)"
done
# AssumeRole: an IAM user allowed sts:AssumeRole assumes a role that trusts the account (the
# root may not assume roles, as on AWS).
role_arn=$("$venv/bin/python" - "http://127.0.0.1:$port/" "$work/data/root-credentials" "$work/user-credentials" <<'PY'
import configparser, json, sys, boto3
c = configparser.ConfigParser(); c.read(sys.argv[2]); d = c["default"]
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
          aws_access_key_id=d["aws_access_key_id"], aws_secret_access_key=d["aws_secret_access_key"])
iam = boto3.client("iam", **kw)
account = boto3.client("sts", **kw).get_caller_identity()["Account"]
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": account}, "Action": "sts:AssumeRole"}]}
arn = iam.create_role(RoleName="Bench", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
iam.create_user(UserName="bench")
iam.put_user_policy(UserName="bench", PolicyName="assume", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn}]}))
key = iam.create_access_key(UserName="bench")["AccessKey"]
out = configparser.ConfigParser()
out["default"] = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
with open(sys.argv[3], "w") as f:
    out.write(f)
print(arn)
PY
)
"$venv/bin/python" bench/signed_request.py "http://127.0.0.1:$port/" "$work/user-credentials" AssumeRole \
  "RoleArn=$role_arn" RoleSessionName=bench >"$work/assume.lua"
for conns in 1 64; do
  threads=$(( conns == 1 ? 1 : 2 ))
  echo "AssumeRole connections=$conns: $(wrk -t$threads -c$conns -d${secs}s -s "$work/assume.lua" "http://127.0.0.1:$port/" | tail -1)"
done
# AssumeRoleWithWebIdentity against a loopback OIDC issuer (JWKS cached after the first call).
"$venv/bin/python" bench/oidc_issuer.py "http://127.0.0.1:$port/" "$work/data/root-credentials" "$work/web.lua" >"$work/issuer.out" 2>&1 &
issuer_pid=$!
for _ in $(seq 100); do grep -q ready "$work/issuer.out" 2>/dev/null && break; sleep 0.1; done
for conns in 1 64; do
  threads=$(( conns == 1 ? 1 : 2 ))
  echo "AssumeRoleWithWebIdentity connections=$conns: $(wrk -t$threads -c$conns -d${secs}s -s "$work/web.lua" "http://127.0.0.1:$port/" | tail -1)"
done
kill $issuer_pid 2>/dev/null || true
echo "loaded_rss_kib=$(ps -o rss= -p "$(cat "$work/pid")" | tr -d ' ')"
