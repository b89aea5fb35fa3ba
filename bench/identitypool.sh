#!/usr/bin/env bash
# Identity pool benchmark: GetCredentialsForIdentity (user pool ID token verified, identity
# and logins read, trust policy evaluated, a session token sealed) and GetId with wrk.
#
# usage: bench/identitypool.sh [seconds-per-run]   (needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
. bench/lib.sh
start_server 48
"$venv/bin/python" bench/identitypool_setup.py "$url" "$work/data/root-credentials" "$work"
wrk_runs "GetCredentialsForIdentity" "$work/credentials.lua"
wrk_runs "GetId" "$work/getid.lua"
