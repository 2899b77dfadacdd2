#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on 127.0.0.1 and print its SQLAlchemy URL on stdout.
#
#   export MTL_STUDIO_TEST_PG="$(bash .ci/start_postgres.sh)"
#   python -m pytest -m postgres tests/test_store_postgres.py
#   bash .ci/start_postgres.sh --stop      # stop the cluster and delete its directory
#
# Installs Debian's postgresql with apt-get when no server binaries are found. Starting twice
# reuses the running cluster. Everything but the URL goes to stderr.
# Env: MTL_PG_PORT (default 55432), MTL_PG_DB (default mtl_test).
set -euo pipefail

PORT="${MTL_PG_PORT:-55432}"
DB="${MTL_PG_DB:-mtl_test}"
STATE_FILE="${TMPDIR:-/tmp}/mtl-studio-pg.state"  # "<dir> <port> <db>" of the running cluster

log() { echo "start_postgres: $*" >&2; }

pg_bindir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# initdb and postgres refuse to run as root: drop to the postgres user there.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url() { echo "postgresql+psycopg://postgres@127.0.0.1:$2/$3"; }

if [ "${1:-}" = "--stop" ]; then
    [ -f "$STATE_FILE" ] || { log "nothing to stop"; exit 0; }
    read -r dir _ _ < "$STATE_FILE"
    as_owner "$(pg_bindir)/pg_ctl" -D "$dir/data" -m fast stop >&2 || true
    rm -rf "$dir" "$STATE_FILE"
    log "stopped and removed $dir"
    exit 0
fi

if [ -z "$(pg_bindir)" ] || [ ! -x "$(pg_bindir)/initdb" ]; then
    log "installing postgresql with apt-get"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
fi
BIN="$(pg_bindir)"

if [ -f "$STATE_FILE" ]; then
    read -r dir port db < "$STATE_FILE"
    if as_owner "$BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        log "reusing the cluster already running in $dir"
        url "$dir" "$port" "$db"
        exit 0
    fi
    rm -rf "$dir" "$STATE_FILE"
fi

DIR="$(mktemp -d "${TMPDIR:-/tmp}/mtl-pg.XXXXXX")"
chmod 755 "$DIR"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$DIR"; fi

# Trust auth is fine: the cluster listens on 127.0.0.1 only and lives for one CI run.
as_owner "$BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
if ! as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=200" start >&2; then
    tail -n 20 "$DIR/server.log" >&2 || true
    rm -rf "$DIR"
    log "could not start PostgreSQL (port $PORT in use? set MTL_PG_PORT)"
    exit 1
fi
"$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB" >&2
echo "$DIR $PORT $DB" > "$STATE_FILE"
log "running in $DIR (stop with: bash .ci/start_postgres.sh --stop)"

if ! python -c "import psycopg" 2>/dev/null; then
    log "warning: python package psycopg is missing (pip install 'psycopg[binary]')"
fi
url "$DIR" "$PORT" "$DB"
