#!/usr/bin/env bash
# Redis for the two sites: a primary, a replica and three Sentinels that promote the
# replica when the primary fails. Barid finds the current primary through the Sentinels
# (REDIS_SENTINELS, REDIS_SENTINEL_MASTER); anything lost with Redis is re-sent from the
# outbox, so Redis holds no money state of its own.
#
#   deploy/redis-site.sh primary  PORT DIR
#   deploy/redis-site.sh replica  PORT DIR PRIMARY_PORT
#   deploy/redis-site.sh sentinel PORT DIR MASTER_NAME PRIMARY_PORT [QUORUM]
#       a Sentinel watching MASTER_NAME (default quorum 2 of 3); it declares the primary
#       down after 2 s without an answer and fails over within a few seconds.
#   deploy/redis-site.sh stop     DIR      (every Redis and Sentinel started in DIR)
#
# Each process writes DIR/<port>.conf, DIR/<port>.pid and DIR/<port>.log and runs as a
# daemon. Environment: REDIS_HOST (default 127.0.0.1), REDIS_SERVER (default redis-server).
set -euo pipefail

REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_SERVER=${REDIS_SERVER:-redis-server}

die() { echo "redis-site: $*" >&2; exit 1; }

base_conf() {  # base_conf PORT DIR
    cat <<EOF
bind $REDIS_HOST
port $1
dir $2
daemonize yes
pidfile $2/$1.pid
logfile $2/$1.log
EOF
}

wait_ping() {  # wait_ping PORT
    for _ in $(seq 100); do
        redis-cli -h "$REDIS_HOST" -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "nothing answers on port $1"
}

cmd=${1:-}; shift || true
case "$cmd" in
primary|replica)
    [ "$cmd" = primary ] && [ $# -ne 2 ] && die "usage: primary PORT DIR"
    [ "$cmd" = replica ] && [ $# -ne 3 ] && die "usage: replica PORT DIR PRIMARY_PORT"
    port=$1 dir=$2
    mkdir -p "$dir"
    {
        base_conf "$port" "$dir"
        # The queue's contents survive a restart of this process (the outbox covers
        # the rest); fsync once a second is the usual trade.
        echo "appendonly yes"
        echo "appendfilename \"$port.aof\""
        echo "appenddirname \"$port-aof\""
        echo "dbfilename $port.rdb"
        [ "$cmd" = replica ] && echo "replicaof $REDIS_HOST $3"
    } >"$dir/$port.conf"
    "$REDIS_SERVER" "$dir/$port.conf"
    wait_ping "$port"
    echo "redis-site: $cmd on port $port" >&2
    ;;
sentinel)
    [ $# -ge 4 ] || die "usage: sentinel PORT DIR MASTER_NAME PRIMARY_PORT [QUORUM]"
    port=$1 dir=$2 master=$3 primary_port=$4 quorum=${5:-2}
    mkdir -p "$dir"
    # Sentinel rewrites its own file as it learns the topology; it must be writable.
    {
        base_conf "$port" "$dir"
        echo "sentinel monitor $master $REDIS_HOST $primary_port $quorum"
        echo "sentinel down-after-milliseconds $master 2000"
        echo "sentinel failover-timeout $master 10000"
        echo "sentinel parallel-syncs $master 1"
    } >"$dir/$port.conf"
    "$REDIS_SERVER" "$dir/$port.conf" --sentinel
    wait_ping "$port"
    echo "redis-site: sentinel on port $port watching $master" >&2
    ;;
stop)
    [ $# -eq 1 ] || die "usage: stop DIR"
    for pidfile in "$1"/*.pid; do
        [ -e "$pidfile" ] || continue
        kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    ;;
*)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
