#!/usr/bin/env bash
# Start a throwaway PostgreSQL 15 cluster in a temp dir, as a non-root user, on loopback.
# Prints the SQLAlchemy URL on stdout. Stop it with: tests/pg.sh stop DIR
set -euo pipefail
if [ "${1:-}" = "stop" ]; then
  dir="$2"; owner=$(stat -c %U "$dir")
  if [ "$(id -u)" = 0 ]; then runuser -u "$owner" -- pg_ctl -D "$dir/data" -m fast stop >/dev/null || true
  else pg_ctl -D "$dir/data" -m fast stop >/dev/null || true; fi
  rm -rf "$dir"; exit 0
fi
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
export PATH="${bindir:+$bindir:}$PATH"
command -v initdb >/dev/null || { echo "initdb not found: install postgresql" >&2; exit 1; }
port="${PGPORT_TEST:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
dir=$(mktemp -d /tmp/lti-pg.XXXXXX)
run=()
if [ "$(id -u)" = 0 ]; then
  id ltitest >/dev/null 2>&1 || useradd --system --no-create-home ltitest
  chown ltitest "$dir"; run=(runuser -u ltitest --)
fi
"${run[@]}" initdb -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
"${run[@]}" pg_ctl -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
"${run[@]}" createdb -h 127.0.0.1 -p "$port" -U postgres lti_test
echo "$dir postgresql+psycopg://postgres@127.0.0.1:$port/lti_test"
