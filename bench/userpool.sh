#!/usr/bin/env bash
# User pool benchmark: InitiateAuth (USER_PASSWORD_AUTH: Argon2id check + two RS256
# signatures + a refresh token row) and GetUser (access token verified) with wrk.
#
# usage: bench/userpool.sh [seconds-per-run]   (needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
. bench/lib.sh
start_server 47
"$venv/bin/python" bench/userpool_setup.py "$url" "$work/data/root-credentials" "$work"
wrk_runs "InitiateAuth" "$work/initiate.lua"
wrk_runs "GetUser" "$work/getuser.lua"
