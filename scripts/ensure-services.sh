#!/usr/bin/env bash
# Makes sure the services the integration tests use are up:
#   Redis      127.0.0.1:6379
#   PostgreSQL 127.0.0.1:5432, database "test", user postgres, trust auth on 127.0.0.1 and ::1
#   chromium   Debian's package, for the console's headless browser tests (not a service)
#   haproxy    Debian's package, the load balancer of the three-node e2e test (tests/e2e/multinode_test.go
#              starts its own on loopback; not a service)
# A service that already answers is left alone. One that does not is installed from Debian's packages
# when its binaries are missing (apt-get update first; needs root) and started with the same commands
# the machine image uses. Idempotent; prints one line per service.
# It also installs the container runtimes the mirror e2e tests drive (tests/e2e/containerd_test.go,
# skopeo_test.go): containerd (with ctr) and skopeo from Debian's packages, when missing and running as
# root. The tests start containerd themselves, with their own root, state and socket.
set -euo pipefail

REDIS_PORT=${REDIS_PORT:-6379}
PG_PORT=${PG_PORT:-5432}
PG_DB=test

log() { echo "services: $*"; }
die() { echo "services: ERROR: $*" >&2; exit 1; }

# tcp_open PORT: something accepts connections on 127.0.0.1:PORT.
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for DESCRIPTION CMD...: polls CMD until it succeeds, for up to 30 s.
wait_for() {
  local what=$1; shift
  local i
  for i in $(seq 1 60); do
    if "$@"; then return 0; fi
    sleep 0.5
  done
  die "$what did not come up"
}

apt_updated=0
apt_install() {
  [ "$(id -u)" -eq 0 ] || die "need root to install $* (apt-get)"
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

redis_ping() {
  # RESP inline PING over bash's /dev/tcp; no redis-cli needed.
  local reply
  reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" && printf 'PING\r\n' >&3 && timeout 2 head -c 7 <&3) 2>/dev/null) || return 1
  [[ $reply == +PONG* ]]
}

ensure_redis() {
  if redis_ping; then log "redis up on 127.0.0.1:$REDIS_PORT"; return; fi
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  if id redis >/dev/null 2>&1; then chown redis:redis /var/lib/redis /var/log/redis 2>/dev/null || true; fi
  log "starting redis-server"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis redis_ping
  log "redis started on 127.0.0.1:$REDIS_PORT"
}

pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n1; }

# psql_as_postgres ARGS...: psql over the local socket as the postgres OS user (peer auth).
psql_as_postgres() {
  if [ "$(id -un)" = postgres ]; then psql -X -q "$@"; else runuser -u postgres -- psql -X -q "$@"; fi
}

pg_tcp_ok() { psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$PG_DB" -w -c 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
  if pg_tcp_ok; then log "postgresql up on 127.0.0.1:$PG_PORT (db $PG_DB, trust)"; return; fi
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(pg_version)" ]; then apt_install postgresql; fi
  local ver; ver=$(pg_version)
  [ -n "$ver" ] || die "no cluster under /etc/postgresql after installing postgresql"
  if ! tcp_open "$PG_PORT"; then
    log "starting postgresql $ver/main"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start
    wait_for postgresql tcp_open "$PG_PORT"
  fi
  # trust auth for TCP from loopback: put our lines first so they win over md5/scram lines below them.
  local hba="/etc/postgresql/$ver/main/pg_hba.conf"
  if [ -f "$hba" ] && ! grep -q '^# berth-ci trust' "$hba"; then
    log "adding trust auth for 127.0.0.1 and ::1 to $hba"
    { printf '# berth-ci trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n'; cat "$hba"; } >"$hba.new"
    chown --reference="$hba" "$hba.new" 2>/dev/null || true
    chmod --reference="$hba" "$hba.new" 2>/dev/null || true
    mv "$hba.new" "$hba"
    psql_as_postgres -c 'select pg_reload_conf()' >/dev/null
  fi
  if [ "$(psql_as_postgres -tAc "select 1 from pg_database where datname = '$PG_DB'")" != 1 ]; then
    log "creating database $PG_DB"
    psql_as_postgres -c "create database $PG_DB"
  fi
  wait_for "postgresql (db $PG_DB over TCP)" pg_tcp_ok
  log "postgresql ready on 127.0.0.1:$PG_PORT (db $PG_DB, trust)"
}

# Container runtimes for the mirror e2e tests; without root the tests that need them skip.
ensure_runtimes() {
  local missing=()
  command -v containerd >/dev/null && command -v ctr >/dev/null || missing+=(containerd)
  command -v skopeo >/dev/null || missing+=(skopeo)
  if [ ${#missing[@]} -eq 0 ]; then log "containerd and skopeo installed"; return; fi
  if [ "$(id -u)" -ne 0 ]; then log "not root: skipping ${missing[*]} (the e2e tests that need them skip)"; return; fi
  apt_install "${missing[@]}"
  log "installed ${missing[*]}"
}

# Debian's chromium for the console's browser tests (tests/e2e/console_test.go drive it headless).
ensure_chromium() {
  if command -v chromium >/dev/null; then log "chromium present ($(command -v chromium))"; return; fi
  apt_install chromium
  log "chromium installed"
}

# Debian's haproxy for the three-node e2e test, which starts it itself with a generated config.
ensure_haproxy() {
  if command -v haproxy >/dev/null; then log "haproxy present ($(command -v haproxy))"; return; fi
  if [ "$(id -u)" -ne 0 ]; then log "not root: skipping haproxy (the three-node e2e test skips)"; return; fi
  apt_install haproxy
  log "haproxy installed"
}

ensure_redis
ensure_postgres
ensure_runtimes
ensure_chromium
ensure_haproxy
