#!/usr/bin/env bash
# Starts or stops a private PgBouncer in transaction mode in front of the test server,
# for the pooler tests (`TENANCY_TEST_PGBOUNCER`). Never touches the system service.
#
#   eval "$(bash .ci/pgbouncer.sh start)"   # installs it if missing, prints the exports
#   bash .ci/pgbouncer.sh stop "$dir"       # stops it and removes its directory
#
# Upstream: host and port of TENANCY_TEST_DATABASE_URL's server if set (its user must be
# able to log in without a password through PgBouncer: trust, as on the CI machine), else
# 127.0.0.1:5432. A wildcard database entry lets the tests reach every throwaway database.
# The server pool (POOL, default 3) is smaller than the pooler tests' task counts, so
# server connections are shared between clients, which is what the tests are about.
set -euo pipefail

pool="${POOL:-3}"

free_port() {
    # A port nobody listens on, from the ephemeral range.
    for _ in $(seq 1 50); do
        port=$(( 20000 + RANDOM % 20000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

upstream() {
    local url="${TENANCY_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
    local rest="${url#*://}"
    rest="${rest#*@}"
    local hostport="${rest%%/*}"
    local host="${hostport%%:*}"
    local port=5432
    [ "$hostport" != "$host" ] && port="${hostport##*:}"
    local user_part="${url#*://}"
    local user="postgres"
    case "$user_part" in *@*) user="${user_part%%@*}"; user="${user%%:*}" ;; esac
    echo "$host $port $user"
}

start() {
    if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
        echo "pgbouncer not found; installing Debian's package" >&2
        if command -v apt-get >/dev/null 2>&1; then
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer) >&2
        else
            echo "cannot install pgbouncer: no apt-get" >&2
            return 1
        fi
    fi
    local bin
    bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
    read -r host port user <<<"$(upstream)"
    local listen
    listen=$(free_port)
    local dir
    dir=$(mktemp -d /tmp/tenancy-pgbouncer.XXXXXX)
    chmod 755 "$dir"
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$host port=$port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $listen
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $pool
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 500
max_db_connections = $pool
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
server_login_retry = 1
query_wait_timeout = 60
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    echo "\"$user\" \"\"" >"$dir/userlist.txt"
    chmod 644 "$dir"/*
    local run_as=()
    if [ "$(id -u)" = 0 ]; then
        # PgBouncer refuses to run as root; run it as an unprivileged user instead.
        local who=postgres
        id "$who" >/dev/null 2>&1 || who=nobody
        chown -R "$who" "$dir"
        run_as=(-u "$who")
    fi
    "$bin" -d "${run_as[@]}" "$dir/pgbouncer.ini" >&2
    for _ in $(seq 1 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$listen") 2>/dev/null && break
        sleep 0.1
    done
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$listen") 2>/dev/null; then
        echo "pgbouncer did not start; its log:" >&2
        cat "$dir/pgbouncer.log" >&2 || true
        return 1
    fi
    echo "export TENANCY_TEST_PGBOUNCER=127.0.0.1:$listen"
    echo "export TENANCY_PGBOUNCER_DIR=$dir"
    echo "pgbouncer $("$bin" --version | head -n 1 | awk '{print $2}') on 127.0.0.1:$listen \
(transaction mode, $pool server connections) in front of $host:$port; dir $dir" >&2
}

stop() {
    local dir="${1:-${TENANCY_PGBOUNCER_DIR:-}}"
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    if [ -f "$dir/pgbouncer.pid" ]; then
        local pid
        pid=$(cat "$dir/pgbouncer.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start | stop [dir]" >&2; exit 2 ;;
esac
