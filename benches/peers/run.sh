#!/usr/bin/env bash
# django-tenants beside tenancy on the same server, the same DDL and the same
# number of tenants, one after the other (BENCHMARKS.md, "Beside django-tenants").
#
#   bash benches/peers/run.sh [--provision P] [--tenants N]    # defaults: 50 and 200
#
# Needs python3 (with venv) and PyPI; installs django-tenants into a virtualenv
# under ${TMPDIR:-/tmp} (or $TENANCY_PEER_VENV) and works in a throwaway database
# on $PGHOST:$PGPORT (127.0.0.1:5432, user postgres, by default).
set -euo pipefail

provision=50
tenants=200
while [ $# -gt 0 ]; do
    case "$1" in
        --provision) provision=$2; shift 2 ;;
        --tenants) tenants=$2; shift 2 ;;
        *) echo "unknown option: $1 (use --provision P and --tenants N)" >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
export PGUSER=${PGUSER:-postgres} PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432}
venv=${TENANCY_PEER_VENV:-${TMPDIR:-/tmp}/tenancy-peer-venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    'django==5.2.*' 'django-tenants==4.0.1' 'psycopg2-binary==2.9.*'

db="tenancy_peer_$$"
psql -q -d postgres -c "CREATE DATABASE $db"
trap 'psql -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT

echo "== django-tenants"
"$venv/bin/python" "$here/django_tenants_peer.py" --database "$db" \
    --provision "$provision" --tenants "$tenants"
echo
echo "== tenancy (cargo bench -p tenancy-migrate --bench fleet)"
cargo bench -p tenancy-migrate --bench fleet -- --provision "$provision" --tenants "$tenants"
