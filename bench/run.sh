#!/usr/bin/env bash
# Load benchmark of this server beside Prosody (and ejabberd if installed), in one run, with
# the shared load tools (../shared/bench). Our server gets one core (CPU 1), like the others.
#
#   bench/run.sh [USERS ...]            default: 200 2000
#   SERVERS="prosody ejabberd" REPS=2 PROSODY_AUTH=internal_hashed bench/run.sh 2000
#
# Our server runs on the embedded default storage (SQLite) with TLS off for the load
# generator's plain-TCP PLAIN logins, and in-band registration from loopback (exempt from
# the registration rate limit, as in Prosody). Its modules are the ones the shared Prosody and
# ejabberd configurations load (no archive, carbons or stream management there):
# MODULES=... overrides the list, MODULES=default runs every default module.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SHARED_BENCH="${SHARED_BENCH:-$ROOT/../shared/bench}"
PORT="${PORT:-25222}"
export DOMAIN="${DOMAIN:-bench.test}"
export SERVERS="${SERVERS-prosody}"
SERVER_CPUS="${SERVER_CPUS-1}"
MODULES="${MODULES-disco,ping,version,time,last,register,roster,presence,messages,offline}"
modules_env=(); [ "$MODULES" != default ] && modules_env=(XMPPD_MODULES_ENABLED="$MODULES")

work="$(mktemp -d)"
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

ulimit -n "$(ulimit -Hn)"
pin=(); [ -n "$SERVER_CPUS" ] && [ "$(nproc)" -ge 2 ] && pin=(taskset -c "$SERVER_CPUS")
(cd "$work" && exec env \
    XMPPD_SERVER_DOMAIN="$DOMAIN" XMPPD_SERVER_DATA_DIR="$work/data" XMPPD_SERVER_LOG_LEVEL=warning \
    XMPPD_C2S_PORT="$PORT" XMPPD_C2S_DIRECT_TLS_PORT=0 XMPPD_C2S_REQUIRE_TLS=false \
    XMPPD_C2S_MAX_CONNECTIONS=20000 XMPPD_HTTP_ENABLED=false XMPPD_S2S_ENABLED=false \
    "${modules_env[@]}" "${pin[@]}" python3 -m xmpp_server serve) > "$work/xmppd.log" 2>&1 &
PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
echo "xmppd pid $PID on 127.0.0.1:$PORT domain $DOMAIN" >&2

HOST=127.0.0.1 PORT="$PORT" PID="$PID" CUSTOM_LABEL=xmppd TSUNG="${TSUNG:-0}" \
    "$SHARED_BENCH/run_side_by_side.sh" "$@"
