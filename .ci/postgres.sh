#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: `.ci/postgres.sh COMMAND [ARGS...]` creates a
# cluster in a fresh temporary folder, starts it, runs COMMAND with CRS_TEST_POSTGRES_URL set to
# its superuser's SQLAlchemy URL, then stops the cluster and removes the folder (also on failure or
# Ctrl-C), and exits with COMMAND's status. Locally, for example:
#
#     .ci/postgres.sh .venv/bin/python -m pytest -q tests/test_store.py
#
# The server listens only on a Unix socket inside that folder (no TCP port, so it never clashes
# with another cluster on the machine) and trusts every local connection: it holds nothing but test
# databases and lives as long as COMMAND. PostgreSQL refuses to run as root, so under root the
# cluster belongs to the unprivileged user CRS_PG_USER (default: nobody) and runs through runuser.
# Needs Debian's `postgresql` package (initdb and pg_ctl in /usr/lib/postgresql/<version>/bin);
# .ci/run installs it when missing.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]  (runs COMMAND with CRS_TEST_POSTGRES_URL set to a throwaway cluster)" >&2
  exit 2
fi

# Debian keeps the server programs off PATH, one folder per major version: take the newest.
if ! command -v initdb >/dev/null 2>&1 || ! command -v pg_ctl >/dev/null 2>&1; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "postgres.sh: initdb and pg_ctl not found (install Debian's 'postgresql' package)" >&2
    exit 1
  fi
  PATH="$bindir:$PATH"
fi

as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  owner="${CRS_PG_USER:-nobody}"
  as_owner=(runuser -u "$owner" --)
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/crs-pg.XXXXXX")
data="$root/data"
sock="$root/sock"
mkdir -p "$sock"
[ "${#as_owner[@]}" -gt 0 ] && chown -R "$owner" "$root"
# mktemp makes the folder private to its creator; the server's owner must reach it too.
chmod 755 "$root"

# From inside the cluster's folder: the owner may not be allowed into the caller's working folder.
as_owner_run() { (cd "$root" && "${as_owner[@]}" "$@"); }

stop() {
  if [ -f "$data/postmaster.pid" ]; then
    as_owner_run pg_ctl -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$root"
}
trap stop EXIT
trap 'exit 130' INT TERM  # the EXIT trap then stops the server

as_owner_run initdb -D "$data" -U crs --auth=trust -E UTF8 --locale=C.UTF-8 >"$root/initdb.log" 2>&1 \
  || { cat "$root/initdb.log" >&2; exit 1; }
# fsync off: a test cluster never has to survive a crash, and this makes it several times faster.
as_owner_run pg_ctl -D "$data" -l "$root/server.log" -w -t 60 \
  -o "-c listen_addresses='' -c unix_socket_directories='$sock' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null || { cat "$root/server.log" >&2; exit 1; }
for _ in $(seq 1 60); do
  pg_isready -q -h "$sock" && break
  sleep 0.5
done
pg_isready -q -h "$sock" || { echo "postgres.sh: the server did not become ready" >&2; cat "$root/server.log" >&2; exit 1; }

export CRS_TEST_POSTGRES_URL="postgresql+psycopg://crs@/postgres?host=$sock"
echo "== PostgreSQL $(postgres --version | awk '{print $3}') at CRS_TEST_POSTGRES_URL=$CRS_TEST_POSTGRES_URL" >&2
set +e
"$@"
status=$?
set -e
exit "$status"
