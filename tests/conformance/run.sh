#!/usr/bin/env bash
# Runs the OCI distribution-spec conformance suite against a fresh bin/berth.
#
# Starts the server on a free loopback port with a temp data dir and a known admin password, creates the
# project the suite pushes to (private, so every request exercises Basic auth; allow_sparse_manifests on,
# for the suite's sparse manifests), runs the pinned `conformance` binary with every workflow and option
# on, once per spec version in OCI_VERSIONS (each in its own repositories), and writes results to
# $RESULTS_DIR/<version>/:
#   results.yaml, junit.xml, report.html   the suite's own reports
#   conformance.log                        the suite's stdout/stderr (per-test status and errors)
# and the server's log to $RESULTS_DIR/berth.log. Prints the pass/fail/skip counts per version and exits
# non-zero on any failure or skip (or when the suite could not run). The server is stopped on exit.
#
# Settings (environment):
#   BACKEND           sqlite (default: the embedded database, in-process cache) or postgres (a fresh
#                     database on BERTH_TEST_POSTGRES_URL's server, dropped on exit, and Redis at
#                     BERTH_TEST_REDIS_URL); needs psql for postgres. A "+s3" suffix (sqlite+s3,
#                     postgres+s3) keeps blobs in S3 instead of the data dir: a versitygw (TOOLS_BIN) with
#                     its posix backend in the temp dir, on a free loopback port, one bucket made with
#                     curl --aws-sigv4
#   BERTH_BIN         server binary (default bin/berth)
#   TOOLS_BIN         folder with the conformance binary (default .tools/bin)
#   RESULTS_DIR       default tests/results/conformance-$BACKEND
#   OCI_VERSIONS      spec versions to run the suite for, default "1.1 dev"
#   Any OCI_* variable the suite reads overrides the defaults below (e.g. OCI_LOG=debug,
#   OCI_FILTER_TEST="OCI Conformance Test/sha256 blobs"); OCI_REPO1/OCI_REPO2 only with one version.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BERTH_BIN=${BERTH_BIN:-$ROOT/bin/berth}
TOOLS_BIN=${TOOLS_BIN:-$ROOT/.tools/bin}
BACKEND=${BACKEND:-sqlite}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/tests/results/conformance-$BACKEND}
CONFORMANCE=$TOOLS_BIN/conformance
PG_URL=${BERTH_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
REDIS_URL=${BERTH_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}

die() { echo "conformance: ERROR: $*" >&2; exit 1; }
[ -x "$BERTH_BIN" ] || die "server binary $BERTH_BIN missing (make build)"
[ -x "$CONFORMANCE" ] || die "$CONFORMANCE missing (scripts/install-tools.sh conformance)"
command -v curl >/dev/null || die "curl is needed"
DB=${BACKEND%+s3}
STORAGE=file
[ "$DB" = "$BACKEND" ] || STORAGE=s3
case $DB in
  sqlite) ;;
  postgres) command -v psql >/dev/null || die "psql is needed for BACKEND=postgres (make services)" ;;
  *) die "BACKEND must be sqlite, postgres, sqlite+s3 or postgres+s3, not $BACKEND" ;;
esac
[ "$STORAGE" = file ] || [ -x "$TOOLS_BIN/versitygw" ] || die "$TOOLS_BIN/versitygw missing (scripts/install-tools.sh versitygw)"

work=$(mktemp -d)
pid=""
pg_db=""
s3_pid=""
cleanup() {
  local rc=$?
  if [ -n "$s3_pid" ]; then
    kill -TERM "$s3_pid" 2>/dev/null || true
    wait "$s3_pid" 2>/dev/null || true
  fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "conformance: server did not stop within 30 s of SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  fi
  [ -f "$work/berth.log" ] && cp "$work/berth.log" "$RESULTS_DIR/berth.log" 2>/dev/null
  if [ -n "$pg_db" ]; then
    psql -X -q "$PG_URL" -c "drop database if exists $pg_db with (force)" >/dev/null 2>&1 ||
      echo "conformance: could not drop database $pg_db" >&2
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -rf "$RESULTS_DIR"
mkdir -p "$RESULTS_DIR"

# port_free PORT: nothing accepts connections on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

password="Berth-conf-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
backend_args=()
if [ "$DB" = postgres ]; then
  pg_db="berth_conf_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  psql -X -q "$PG_URL" -c "create database $pg_db" >/dev/null || die "create database $pg_db on $PG_URL"
  # the same server and options, another database
  db_url=$(printf '%s' "$PG_URL" | sed -E "s#^(postgres(ql)?://[^/]*)/[^?]*#\1/$pg_db#")
  backend_args=(--database-url "$db_url" --redis-url "$REDIS_URL")
fi
# start_s3: a versitygw on a free port with one bucket; adds the storage settings to backend_args.
start_s3() {
  local attempt port key secret
  key="berth$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')" secret="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  mkdir -p "$work/s3"
  for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    port_free "$port" || continue
    "$TOOLS_BIN/versitygw" --access "$key" --secret "$secret" --port "127.0.0.1:$port" --quiet \
      posix "$work/s3" >>"$work/versitygw.log" 2>&1 &
    s3_pid=$!
    local i
    for i in $(seq 1 60); do
      if ! kill -0 "$s3_pid" 2>/dev/null; then break; fi
      # the sha256 of the empty body: S3 servers want it, curl does not send it by itself
      if curl -sf -o /dev/null --max-time 2 --aws-sigv4 "aws:amz:us-east-1:s3" --user "$key:$secret" \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" -X PUT "http://127.0.0.1:$port/conformance"; then
        echo "conformance: versitygw on 127.0.0.1:$port, bucket conformance"
        backend_args+=(--storage-url s3://conformance/berth --storage-s3-endpoint "http://127.0.0.1:$port"
          --storage-s3-path-style --storage-s3-region us-east-1
          --storage-s3-access-key "$key" --storage-s3-secret-key "$secret")
        return 0
      fi
      sleep 0.5
    done
    kill "$s3_pid" 2>/dev/null || true
    wait "$s3_pid" 2>/dev/null || true
    s3_pid=""
  done
  tail -n 20 "$work/versitygw.log" >&2
  die "could not start versitygw"
}
[ "$STORAGE" = file ] || start_s3
start_server() {
  local attempt port
  for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    port_free "$port" || continue
    addr=127.0.0.1:$port
    echo "conformance: starting $BERTH_BIN on $addr (backend $BACKEND, data dir $work/data, attempt $attempt)"
    env -u BERTH_DATABASE_URL -u BERTH_REDIS_URL -u BERTH_CONFIG -u BERTH_LISTEN -u BERTH_DATA_DIR \
      -u BERTH_ADMIN_PASSWORD "$BERTH_BIN" serve --listen "$addr" --data-dir "$work/data" \
      --admin-password "$password" "${backend_args[@]}" >>"$work/berth.log" 2>&1 &
    pid=$!
    local i
    for i in $(seq 1 120); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$addr/api/v2.0/health")" = 200 ]; then
        return 0
      fi
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      tail -n 50 "$work/berth.log" >&2
      die "server on $addr not healthy after 60 s"
    fi
    wait "$pid" 2>/dev/null || true
    pid=""
    echo "conformance: server exited during start-up; log tail:" >&2
    tail -n 20 "$work/berth.log" >&2
  done
  die "could not start the server"
}
start_server

project=conformance
code=$(curl -s -o "$work/project.json" -w '%{http_code}' --max-time 30 -u "admin:$password" \
  -H 'Content-Type: application/json' \
  -d "{\"project_name\":\"$project\",\"metadata\":{\"public\":\"false\",\"allow_sparse_manifests\":\"true\"}}" \
  "http://$addr/api/v2.0/projects")
[ "$code" = 201 ] || die "create project $project: HTTP $code: $(cat "$work/project.json")"

# Every workflow and option on. The README's legacy names map onto these: OCI_TEST_PULL -> OCI_API_PULL,
# OCI_TEST_PUSH -> OCI_API_PUSH, OCI_TEST_CONTENT_DISCOVERY -> OCI_API_TAGS_LIST + OCI_API_REFERRER,
# OCI_TEST_CONTENT_MANAGEMENT -> OCI_API_{TAGS,MANIFESTS,BLOBS}_DELETE, OCI_CROSSMOUNT_NAMESPACE -> OCI_REPO2;
# OCI_AUTOMATIC_CROSSMOUNT (old suite) -> OCI_API_BLOBS_MOUNT_ANONYMOUS (mount without a `from`).
export OCI_REGISTRY=$addr
export OCI_TLS=disabled
export OCI_USERNAME=admin
export OCI_PASSWORD=$password
export OCI_LOG=${OCI_LOG:-warn}
export OCI_CACHE_AUTH=${OCI_CACHE_AUTH:-true}
export OCI_API_PULL=${OCI_API_PULL:-true}
export OCI_API_PUSH=${OCI_API_PUSH:-true}
export OCI_API_TAGS_LIST=${OCI_API_TAGS_LIST:-true}
export OCI_API_REFERRER=${OCI_API_REFERRER:-true}
export OCI_API_TAGS_DELETE=${OCI_API_TAGS_DELETE:-true}
export OCI_API_MANIFESTS_DELETE=${OCI_API_MANIFESTS_DELETE:-true}
export OCI_API_BLOBS_DELETE=${OCI_API_BLOBS_DELETE:-true}
export OCI_API_BLOBS_MOUNT_ANONYMOUS=${OCI_API_BLOBS_MOUNT_ANONYMOUS:-true}
export OCI_API_BLOBS_UPLOAD_CANCEL=${OCI_API_BLOBS_UPLOAD_CANCEL:-true}
export OCI_API_BLOBS_DIGEST_HEADER=${OCI_API_BLOBS_DIGEST_HEADER:-true}
export OCI_API_MANIFESTS_DIGEST_HEADER=${OCI_API_MANIFESTS_DIGEST_HEADER:-true}
export OCI_API_MANIFESTS_TAG_PARAM=${OCI_API_MANIFESTS_TAG_PARAM:-true}
export OCI_API_BLOBS_ATOMIC=${OCI_API_BLOBS_ATOMIC:-true}
export OCI_API_MANIFESTS_ATOMIC=${OCI_API_MANIFESTS_ATOMIC:-true}
export OCI_API_TAGS_ATOMIC=${OCI_API_TAGS_ATOMIC:-true}
export OCI_DATA_SPARSE=${OCI_DATA_SPARSE:-true}
export OCI_DATA_SHA512=${OCI_DATA_SHA512:-true}
# no legacy variable may sneak in from the caller and silently turn a workflow off
unset OCI_TEST_PULL OCI_TEST_PUSH OCI_TEST_CONTENT_DISCOVERY OCI_TEST_CONTENT_MANAGEMENT \
  OCI_CROSSMOUNT_NAMESPACE OCI_AUTOMATIC_CROSSMOUNT OCI_ROOT_URL OCI_NAMESPACE OCI_CONFIGURATION

read -r -a versions <<<"${OCI_VERSIONS:-1.1 dev}"
[ "${#versions[@]}" -gt 0 ] || die "OCI_VERSIONS is empty"
if [ "${#versions[@]}" -gt 1 ] && { [ -n "${OCI_REPO1:-}" ] || [ -n "${OCI_REPO2:-}" ]; }; then
  die "OCI_REPO1/OCI_REPO2 need a single version in OCI_VERSIONS (each version pushes to its own repositories)"
fi
repo1=${OCI_REPO1:-}
repo2=${OCI_REPO2:-}

# run_suite VERSION: runs the suite for one spec version; prints its counts; fails on a failure or skip.
run_suite() {
  local ver=$1 dir=$RESULTS_DIR/$1 suite_rc
  mkdir -p "$dir"
  export OCI_VERSION=$ver OCI_RESULTS_DIR=$dir
  export OCI_REPO1=${repo1:-$project/v$ver/repo1} OCI_REPO2=${repo2:-$project/v$ver/repo2}
  echo "conformance: running $CONFORMANCE (backend $BACKEND, spec $ver, repos $OCI_REPO1 $OCI_REPO2)"
  set +e
  (cd "$work" && timeout 20m "$CONFORMANCE") >"$dir/conformance.log" 2>&1
  suite_rc=$?
  set -e

  # The suite's summary block: "  Pass....: N", "  FAIL....: N", ... (see results.go in the suite).
  count() { sed -n "s/^  $1\.*: *\([0-9][0-9]*\)$/\1/p" "$dir/conformance.log" | head -n1; }
  local passed failed errored skipped disabled
  passed=$(count Pass) failed=$(count FAIL) errored=$(count Error) skipped=$(count Skip) disabled=$(count Disabled)
  if [ -z "$passed" ]; then
    tail -n 40 "$dir/conformance.log" >&2
    echo "conformance: ERROR: the suite printed no summary (exit $suite_rc); see $dir/conformance.log" >&2
    return 1
  fi

  # One line per failing test, from the suite's log ("failed test" name=... error=...), and per test that
  # did not pass, from junit.xml (skips are not logged at warn); awk reads its whole input, so no SIGPIPE
  # under pipefail.
  if [ "$((failed + errored + skipped + disabled))" -gt 0 ]; then
    echo "conformance: failing tests (first 150; all in $dir/conformance.log and report.html):"
    awk '/msg="failed test"/ { n++; if (n <= 150) { sub(/^.*msg="failed test" /, ""); print "  " substr($0, 1, 400) } }
         END { if (n > 150) print "  ... " n - 150 " more" }' "$dir/conformance.log"
    echo "conformance: tests that did not pass (from junit.xml):"
    awk '/<testcase / && !/status="passed"/ { n++; if (n <= 150) { sub(/^ */, ""); print "  " substr($0, 1, 300) } }
         END { if (n > 150) print "  ... " n - 150 " more" }' "$dir/junit.xml" 2>/dev/null || true
  fi
  sed -n '/^API conformance:/,/^$/p; /^Data conformance:/,/^$/p' "$dir/conformance.log"
  echo "conformance results: $dir (report.html, junit.xml, results.yaml, conformance.log)"
  echo "conformance-$BACKEND (spec $ver): $passed passed, $((failed + errored)) failed, $((skipped + disabled)) skipped"
  [ "$suite_rc" -eq 0 ] && [ "$((failed + errored + skipped + disabled))" -eq 0 ]
}

rc=0
for ver in "${versions[@]}"; do
  run_suite "$ver" || rc=1
done
exit "$rc"
