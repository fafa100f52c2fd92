#!/usr/bin/env bash
# The failover drill (`make failover-drill`): the two sites on spare ports, Barid on
# them as in production, eight clients paying by post card and topping up in cash, the
# Baghdad primary killed mid-load and Basra promoted as the runbook says, then the Redis
# primary killed and its replica promoted by the Sentinels. It checks that every
# acknowledged payment and top-up is there, the ledger verifies, no card is below zero
# and the outbox drains; then it rejoins Baghdad as Basra's standby.
#
# Environment: DRILL_PORT_BASE (default 56400; uses the next 9 ports), DRILL_SECONDS
# (load before and after each failover, default 15), DRILL_KEEP=1 keeps the work
# directory. Exit status 0 only when nothing acknowledged was lost.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/.venv/bin}
BASE=${DRILL_PORT_BASE:-56400}
SECONDS_EACH=${DRILL_SECONDS:-15}
PG_BAGHDAD=$((BASE + 1)) PG_BASRA=$((BASE + 2))
REDIS_PRIMARY=$((BASE + 3)) REDIS_REPLICA=$((BASE + 4))
SENTINELS="127.0.0.1:$((BASE + 5)),127.0.0.1:$((BASE + 6)),127.0.0.1:$((BASE + 7))"
WEB=$((BASE + 8))

WORK=$(mktemp -d /tmp/barid-drill.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/pg" "$WORK/redis" "$WORK/log"
chown postgres "$WORK/pg" 2>/dev/null || true
PIDS=()

say() { echo "drill: $*"; }

cleanup() {
    local status=$?
    touch "$WORK/stop"
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    "$ROOT/deploy/pg-site.sh" stop "$WORK/pg/baghdad" immediate
    "$ROOT/deploy/pg-site.sh" stop "$WORK/pg/basra" immediate
    "$ROOT/deploy/redis-site.sh" stop "$WORK/redis"
    sleep 1  # Redis and the Sentinels write their last files as they go
    if [ "${DRILL_KEEP:-0}" = 1 ]; then say "work directory kept: $WORK"; else rm -rf "$WORK" || true; fi
    exit "$status"
}
trap cleanup EXIT
trap "exit 130" INT TERM

acks() {
    local n
    n=$(grep -c '"kind": "\(order\|topup\)"' "$WORK/acks.jsonl" 2>/dev/null) || true
    echo "${n:-0}"
}

load_for() {  # load_for SECONDS: let the clients work, and at least 20 more operations
    local start; start=$(acks)
    sleep "$1"
    for _ in $(seq 120); do [ $(($(acks) - start)) -ge 20 ] && return 0; sleep 0.5; done
    say "WARNING: fewer than 20 operations acknowledged in $(( $1 + 60 ))s"
}

wait_http() {  # wait_http URL SECONDS: until it answers 200
    local deadline=$((SECONDS + $2))
    until curl -fs -o /dev/null --max-time 5 "$1"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

say "PostgreSQL: baghdad on $PG_BAGHDAD (primary), basra on $PG_BASRA (synchronous standby)"
"$ROOT/deploy/pg-site.sh" primary baghdad "$PG_BAGHDAD" "$WORK/pg/baghdad" basra 2>/dev/null
"$ROOT/deploy/pg-site.sh" standby basra "$PG_BASRA" "$WORK/pg/basra" "$PG_BAGHDAD"
psql -h 127.0.0.1 -p "$PG_BAGHDAD" -U postgres -qc "CREATE DATABASE barid"

say "Redis: primary $REDIS_PRIMARY, replica $REDIS_REPLICA, Sentinels $SENTINELS"
"$ROOT/deploy/redis-site.sh" primary "$REDIS_PRIMARY" "$WORK/redis"
"$ROOT/deploy/redis-site.sh" replica "$REDIS_REPLICA" "$WORK/redis" "$REDIS_PRIMARY"
for s in ${SENTINELS//,/ }; do
    "$ROOT/deploy/redis-site.sh" sentinel "${s##*:}" "$WORK/redis" barid "$REDIS_PRIMARY"
done

# Both hosts in one URL: libpq tries them in order and takes the one that accepts writes.
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_BAGHDAD,127.0.0.1:$PG_BASRA/barid?target_session_attrs=read-write&connect_timeout=3"
export REDIS_SENTINELS="$SENTINELS" REDIS_SENTINEL_MASTER=barid
export SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export MAIL_BACKEND=memory

"$BIN/barid" db upgrade >"$WORK/log/setup.log" 2>&1
"$BIN/barid" seed-demo >>"$WORK/log/setup.log" 2>&1
"$BIN/python" "$ROOT/scripts/drill_load.py" setup "$WORK/state.json"

say "Barid: gunicorn with 2 workers on $WEB, 2 barid workers"
GUNICORN_CONF=()
[ -f "$ROOT/deploy/gunicorn.conf.py" ] && GUNICORN_CONF=(-c "$ROOT/deploy/gunicorn.conf.py")
(cd "$ROOT" && exec "$BIN/gunicorn" "${GUNICORN_CONF[@]}" -w 2 -b "127.0.0.1:$WEB" \
    app.wsgi:app) >"$WORK/log/gunicorn.log" 2>&1 &
PIDS+=($!)
for i in 1 2; do
    "$BIN/barid" worker >"$WORK/log/worker$i.log" 2>&1 &
    PIDS+=($!)
done
wait_http "http://127.0.0.1:$WEB/readyz" 60 || { say "Barid did not become ready"; tail -20 "$WORK/log/gunicorn.log"; exit 1; }

say "load: 8 clients for ${SECONDS_EACH}s"
"$BIN/python" "$ROOT/scripts/drill_load.py" load "$WORK/state.json" "$WORK/acks.jsonl" \
    "http://127.0.0.1:$WEB" "$WORK/stop" 2>"$WORK/log/load.log" &
LOAD=$!
PIDS+=($LOAD)
load_for "$SECONDS_EACH"

say "kill -9 the Baghdad primary's postmaster"
KILLED_AT=$(date +%s.%N)
kill -9 "$(head -1 "$WORK/pg/baghdad/postmaster.pid")"
# The runbook: make sure Baghdad is down (and fenced), then promote Basra.
"$ROOT/deploy/pg-site.sh" promote basra "$PG_BASRA" "$WORK/pg/basra" "$WORK/pg/baghdad"
wait_http "http://127.0.0.1:$WEB/readyz" 60 && say "Barid answers again on basra"
load_for "$SECONDS_EACH"

say "fencing: the old primary, restarted, refuses writes"
runuser -u postgres -- "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pg_ctl" \
    -D "$WORK/pg/baghdad" -l "$WORK/pg/baghdad.fenced.log" -w start >/dev/null
if psql -h 127.0.0.1 -p "$PG_BAGHDAD" -U postgres -d barid -qc "CREATE TABLE split_brain (x int)" 2>"$WORK/log/fence.txt"; then
    say "FENCING FAILED: the old primary took a write"; exit 1
fi
say "old primary: $(head -1 "$WORK/log/fence.txt")"

say "rejoin Baghdad as Basra's standby, under load"
"$ROOT/deploy/pg-site.sh" rejoin baghdad "$PG_BAGHDAD" "$WORK/pg/baghdad" basra "$PG_BASRA"
load_for "$SECONDS_EACH"

say "the standby down under load: money writes wait (synchronous commit), nothing half-written"
"$ROOT/deploy/pg-site.sh" stop "$WORK/pg/baghdad" fast
sleep 1
BEFORE=$(acks)
sleep "$SECONDS_EACH"
DURING=$(( $(acks) - BEFORE ))
# Every web thread may be waiting on a commit now, so the alarm is read with a deadline,
# and from the database as an operator would.
ALARM=$(curl -fs --max-time 5 "http://127.0.0.1:$WEB/metrics" | grep '^barid_replication_synchronous ' || true)
say "acknowledged while the standby was down: $DURING; alarm: ${ALARM:-/metrics busy}; $("$ROOT/deploy/pg-site.sh" status "$PG_BASRA" | head -1)"
"$ROOT/deploy/pg-site.sh" start "$WORK/pg/baghdad"
load_for "$SECONDS_EACH"

say "kill -9 the Redis primary; the Sentinels promote the replica"
REDIS_KILLED_AT=$(date +%s.%N)
kill -9 "$(cat "$WORK/redis/$REDIS_PRIMARY.pid")"
load_for "$SECONDS_EACH"

touch "$WORK/stop"
wait "$LOAD" || true
say "Redis primary is now port $(redis-cli -p $((BASE + 5)) sentinel get-master-addr-by-name barid | tail -1)"
"$ROOT/deploy/pg-site.sh" status "$PG_BASRA"

"$BIN/python" "$ROOT/scripts/drill_load.py" check "$WORK/state.json" "$WORK/acks.jsonl" "$KILLED_AT" "$REDIS_KILLED_AT"
