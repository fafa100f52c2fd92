#!/usr/bin/env bash
# The two PostgreSQL sites: Baghdad (primary) and Basra (hot standby), on Debian's
# PostgreSQL tools. Streaming replication through a replication slot, with synchronous
# commit: a payment Barid acknowledged is on both sites.
#
#   deploy/pg-site.sh primary  NAME PORT DATADIR PEER
#       initdb a new primary NAME (checksums on, so pg_rewind works), listening on PORT,
#       with a replication slot for the standby PEER and synchronous commit waiting for it.
#   deploy/pg-site.sh standby  NAME PORT DATADIR PRIMARY_PORT
#       copy the primary with pg_basebackup into DATADIR and start it as the hot standby
#       NAME, streaming from PRIMARY_PORT through the slot named NAME.
#   deploy/pg-site.sh promote  NAME PORT DATADIR OLD_PRIMARY_DATADIR
#       fence the old primary (stop it if it still runs, and mark its data directory as a
#       standby so it can never start again as a primary), then promote NAME. The new
#       primary runs without a synchronous standby until the old one rejoins (alarm:
#       barid_replication_synchronous 0).
#   deploy/pg-site.sh rejoin   NAME PORT DATADIR NEW_PRIMARY_NAME NEW_PRIMARY_PORT
#       rewind the old primary NAME with pg_rewind onto the new primary's timeline, start
#       it as the standby, and make the new primary wait for it again.
#   deploy/pg-site.sh start    DATADIR           (a stopped site, in the role it had)
#   deploy/pg-site.sh stop     DATADIR [MODE]
#   deploy/pg-site.sh status   PORT
#
# Environment: PGBIN (default: the newest /usr/lib/postgresql/*/bin), PGHOST (default
# 127.0.0.1), SOCKET_DIR (default: DATADIR's parent), PG_SUPERUSER (default postgres).
# Run as root, the script runs itself again as the postgres user (PostgreSQL refuses
# root). Failing back is `promote` on the old primary after it has rejoined, then
# `rejoin` on the other site.
set -euo pipefail

if [ "$(id -u)" = 0 ]; then
    exec runuser -u postgres -- "$0" "$@"
fi

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
PGHOST=${PGHOST:-127.0.0.1}
PG_SUPERUSER=${PG_SUPERUSER:-postgres}

die() { echo "pg-site: $*" >&2; exit 1; }
log() { echo "pg-site: $*" >&2; }

sql() {  # sql PORT STATEMENT
    "$PGBIN/psql" -h "$PGHOST" -p "$1" -U "$PG_SUPERUSER" -d postgres -XAtq -v ON_ERROR_STOP=1 -c "$2"
}

wait_ready() {  # wait_ready PORT [SECONDS]
    local port=$1 seconds=${2:-60}
    for _ in $(seq $((seconds * 10))); do
        "$PGBIN/pg_isready" -q -h "$PGHOST" -p "$port" && return 0
        sleep 0.1
    done
    die "nothing answers on port $port after ${seconds}s"
}

start() {  # start DATADIR
    local datadir=$1
    "$PGBIN/pg_ctl" -D "$datadir" -l "$datadir.log" -w -t 60 start >/dev/null
}

site_conf() {  # site_conf DATADIR NAME PORT SOCKET_DIR
    cat >>"$1/postgresql.conf" <<EOF

# --- Barid site $2 (deploy/pg-site.sh) ---
listen_addresses = '$PGHOST'
port = $3
unix_socket_directories = '$4'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_log_hints = on
hot_standby = on
hot_standby_feedback = on
wal_keep_size = '256MB'
# A commit returns once the standby has flushed it (remote_apply would also make it
# visible there; flush is enough for "never lost").
synchronous_commit = on
cluster_name = '$2'
EOF
}

hba() {  # hba DATADIR: trust on the loopback only; a real site uses scram and TLS.
    cat >"$1/pg_hba.conf" <<EOF
local   all             all                                     trust
host    all             all             127.0.0.1/32            trust
host    replication     all             127.0.0.1/32            trust
host    all             all             ::1/128                 trust
host    replication     all             ::1/128                 trust
EOF
}

set_sync_standby() {  # set_sync_standby PORT NAME ('' = none: commits do not wait)
    sql "$1" "ALTER SYSTEM SET synchronous_standby_names = '$2'" >/dev/null
    sql "$1" "SELECT pg_reload_conf()" >/dev/null
}

ensure_slot() {  # ensure_slot PORT SLOT
    sql "$1" "SELECT pg_create_physical_replication_slot('$2')
              WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '$2')" >/dev/null
}

standby_settings() {  # standby_settings DATADIR NAME PRIMARY_PORT
    touch "$1/standby.signal"
    cat >>"$1/postgresql.auto.conf" <<EOF
primary_conninfo = 'host=$PGHOST port=$3 user=$PG_SUPERUSER application_name=$2'
primary_slot_name = '$2'
recovery_target_timeline = 'latest'
EOF
}

cmd=${1:-}; shift || true
case "$cmd" in
primary)
    [ $# -eq 4 ] || die "usage: primary NAME PORT DATADIR PEER"
    name=$1 port=$2 datadir=$3 peer=$4
    sockets=${SOCKET_DIR:-$(dirname "$datadir")}
    [ -e "$datadir/PG_VERSION" ] && die "$datadir already holds a cluster"
    "$PGBIN/initdb" -D "$datadir" -U "$PG_SUPERUSER" --data-checksums -E UTF8 \
        --locale=C.UTF-8 >/dev/null
    site_conf "$datadir" "$name" "$port" "$sockets"
    hba "$datadir"
    start "$datadir"
    ensure_slot "$port" "$peer"
    set_sync_standby "$port" "$peer"
    log "$name is the primary on port $port; commits wait for $peer"
    ;;
standby)
    [ $# -eq 4 ] || die "usage: standby NAME PORT DATADIR PRIMARY_PORT"
    name=$1 port=$2 datadir=$3 primary_port=$4
    sockets=${SOCKET_DIR:-$(dirname "$datadir")}
    [ -e "$datadir/PG_VERSION" ] && die "$datadir already holds a cluster"
    ensure_slot "$primary_port" "$name"
    "$PGBIN/pg_basebackup" -h "$PGHOST" -p "$primary_port" -U "$PG_SUPERUSER" \
        -D "$datadir" -X stream -S "$name" -c fast
    chmod 700 "$datadir"
    # The copy carries the primary's settings; this site listens on its own port.
    site_conf "$datadir" "$name" "$port" "$sockets"
    # A standby never waits for itself; promote/rejoin set this when roles change.
    echo "synchronous_standby_names = ''" >>"$datadir/postgresql.auto.conf"
    standby_settings "$datadir" "$name" "$primary_port"
    start "$datadir"
    log "$name streams from port $primary_port as a hot standby on port $port"
    ;;
promote)
    [ $# -eq 4 ] || die "usage: promote NAME PORT DATADIR OLD_PRIMARY_DATADIR"
    name=$1 port=$2 datadir=$3 old=$4
    # Fencing: the old primary must never take a write again once this site does.
    # Stop it if it still runs, then mark its directory as a standby, so a restart (by
    # hand or by a service manager) brings it up read-only until `rejoin` rewinds it.
    # Across two real sites this step is run on the old primary's host, or its host is
    # powered off; the app's target_session_attrs=read-write never writes to a standby.
    if [ -d "$old" ]; then
        "$PGBIN/pg_ctl" -D "$old" status >/dev/null 2>&1 && \
            "$PGBIN/pg_ctl" -D "$old" -m immediate -w stop >/dev/null 2>&1 || true
        touch "$old/standby.signal"
        log "fenced the old primary in $old"
    else
        log "WARNING: $old is not reachable from here; power off or fence the old primary before writes resume"
    fi
    "$PGBIN/pg_ctl" -D "$datadir" -w -t 60 promote >/dev/null
    for _ in $(seq 600); do
        [ "$(sql "$port" "SELECT pg_is_in_recovery()")" = f ] && break
        sleep 0.1
    done
    [ "$(sql "$port" "SELECT pg_is_in_recovery()")" = f ] || die "$name did not leave recovery"
    # No standby to wait for until the old primary rejoins: commits must not hang.
    set_sync_standby "$port" ""
    log "$name is the primary on port $port (no synchronous standby until rejoin)"
    ;;
rejoin)
    [ $# -eq 5 ] || die "usage: rejoin NAME PORT DATADIR NEW_PRIMARY_NAME NEW_PRIMARY_PORT"
    name=$1 port=$2 datadir=$3 primary_name=$4 primary_port=$5
    "$PGBIN/pg_ctl" -D "$datadir" status >/dev/null 2>&1 && \
        "$PGBIN/pg_ctl" -D "$datadir" -m fast -w stop >/dev/null
    ensure_slot "$primary_port" "$name"
    # pg_rewind reads the source's timeline from its control file, which a promotion
    # updates only at its next checkpoint: without this it may see "no rewind required".
    sql "$primary_port" "CHECKPOINT" >/dev/null
    # pg_rewind runs crash recovery itself when the old primary was killed, in
    # single-user mode, which refuses a standby: lift the fence for that step only (the
    # server is stopped throughout, so it cannot take a write meanwhile).
    rm -f "$datadir/standby.signal"
    "$PGBIN/pg_rewind" -D "$datadir" \
        --source-server="host=$PGHOST port=$primary_port user=$PG_SUPERUSER dbname=postgres" \
        >>"$datadir.rewind.log" 2>&1 || die "pg_rewind failed, see $datadir.rewind.log"
    # pg_rewind copied the new primary's configuration: restore this site's own.
    sed -i '/^primary_conninfo\|^primary_slot_name\|^recovery_target_timeline\|^synchronous_standby_names/d' \
        "$datadir/postgresql.auto.conf"
    sockets=${SOCKET_DIR:-$(dirname "$datadir")}
    site_conf "$datadir" "$name" "$port" "$sockets"
    echo "synchronous_standby_names = ''" >>"$datadir/postgresql.auto.conf"
    standby_settings "$datadir" "$name" "$primary_port"
    start "$datadir"
    set_sync_standby "$primary_port" "$name"
    log "$name rejoined as the standby of $primary_name (port $primary_port); commits wait for it again"
    ;;
start)
    [ $# -eq 1 ] || die "usage: start DATADIR"
    start "$1"
    ;;
stop)
    [ $# -ge 1 ] || die "usage: stop DATADIR [MODE]"
    "$PGBIN/pg_ctl" -D "$1" -m "${2:-fast}" -w stop >/dev/null 2>&1 || true
    ;;
status)
    [ $# -eq 1 ] || die "usage: status PORT"
    port=$1
    if [ "$(sql "$port" "SELECT pg_is_in_recovery()")" = t ]; then
        echo "standby; receiving from: $(sql "$port" "SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver")"
    else
        echo "primary; synchronous standby: $(sql "$port" "SHOW synchronous_standby_names")"
        sql "$port" "SELECT application_name, state, sync_state,
                            pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS lag_bytes
                     FROM pg_stat_replication"
    fi
    ;;
*)
    sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
