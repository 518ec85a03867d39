#!/usr/bin/env bash
# Load benchmarks of bin/berth against baselines on loopback (tests/bench, the berthbench program):
# blob and manifest GETs vs a bare net/http server (the blob sent from a file with http.ServeContent, as
# Berth sends it; issue 2), cold proxy pulls of a 512 MiB blob vs the upstream directly, upstream bytes and
# Berth's peak RSS under 10 concurrent cold pullers (issue 3), warm referrers GETs (one hot subject and
# 100 subjects round-robin) and cold ones through a proxy-cache project vs a bare server and vs the
# upstream, on the in-process cache and on Redis with the node cache on and off (issue 4). Every ratio is
# the median of per-round ratios with their range; docs/performance.md says what each row measures.
#
# Builds bin/berth (make build) and berthbench, runs every scenario (a few minutes on 2 cores), prints
# the figures and writes them, as ratios measured in the same run plus absolute numbers, the machine and
# the date, between the berthbench markers of docs/performance.md (text outside the markers is kept).
#
#   scripts/bench.sh                    full run, updates docs/performance.md
#   scripts/bench.sh -quick             smoke run (figures printed, document untouched)
#   scripts/bench.sh -scenarios proxy   one scenario (core, proxy, referrers, mirror, console, hardening, token, storage, retention, gc, pulltime); any berthbench flag works
# The storage scenario (issue 13) runs Berth on S3 against a versitygw (installed here with install-tools.sh).
#
# Settings: BENCH_PIN (default 1: for the request-rate figures, clients on CPU 0 and servers on the other
# CPUs), BENCH_DOC (default docs/performance.md; empty = do not write), BENCH_TIMEOUT (default 50m,
# a hard bound over berthbench's own -timeout), GO. Needs only 127.0.0.1; uses Redis at
# 127.0.0.1:6379 for the Redis variants when it answers (-redis-url '' skips them), each under a key prefix
# of its own that is removed afterwards. Exit status: non-zero when a scenario failed (a "cold" request
# answered from a cache fails it); missed targets are reported, not failures.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
GO=${GO:-go}
BENCH_DOC=${BENCH_DOC-docs/performance.md}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-50m}

make --no-print-directory build

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 "$GO" build -o "$work/berthbench" ./tests/bench/cmd/berthbench

scripts/install-tools.sh versitygw
args=(-berth "$ROOT/bin/berth" -tmp "$work" -versitygw "${TOOLS_BIN:-$ROOT/.tools/bin}/versitygw")
if [ -n "$BENCH_DOC" ]; then
  args+=(-doc "$ROOT/$BENCH_DOC")
fi
echo "bench: $(nproc) CPUs, $("$GO" version), load average $(cut -d' ' -f1-3 /proc/loadavg)"
# berthbench bounds itself; timeout(1) is the backstop (SIGTERM first: berthbench then stops its
# servers and removes its temporary directories; SIGKILL 60s later, and its servers die with it).
# --foreground: Ctrl-C reaches berthbench, which stops cleanly.
# On 2 or more CPUs the request-rate figures run with the clients on CPU 0 and their servers on the others
# (servers started through taskset, util-linux), as a load generator on its own cores would; the cold
# pulls run unpinned. BENCH_PIN=0 turns this off.
n=$(nproc)
if [ "${BENCH_PIN:-1}" != 0 ] && [ "$n" -ge 2 ] && command -v taskset >/dev/null; then
  args+=(-client-cpus 0 -server-cpus "1-$((n - 1))")
fi
timeout --foreground --kill-after=60s "$BENCH_TIMEOUT" "$work/berthbench" "${args[@]}" "$@"
