#!/usr/bin/env bash
# Runs every Go fuzz target under src/ for FUZZTIME (default 10s) each. Targets are discovered with grep,
# so new ones are picked up without editing this file. A failing input is written by `go test` to the
# package's testdata/fuzz/<Target>/ directory: commit it as a regression case once the bug is fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}
GO=${GO:-go}

# "dir<TAB>FuzzName" for every `func FuzzXxx(f *testing.F)` in a _test.go file under src/.
mapfile -t targets < <(
  grep -rEo --include='*_test.go' '^func (Fuzz[A-Za-z0-9_]*)\([a-zA-Z_]+ \*testing\.F\)' src 2>/dev/null |
    sed -E 's#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#\1\t\2#' | sort -u
)
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no Fuzz targets under src/"
  exit 0
fi

failed=()
for t in "${targets[@]}"; do
  dir=${t%%$'\t'*} name=${t##*$'\t'}
  echo "--- fuzz $name in ./$dir for $FUZZTIME"
  corpus="$dir/testdata/fuzz/$name"
  before=$({ ls "$corpus" 2>/dev/null || true; } | wc -l)
  out=$(mktemp)
  if "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$dir" 2>&1 | tee "$out"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
    rm -f "$out"
    continue
  fi
  # Go's fuzzing engine sometimes ends a run with "context deadline exceeded" when a worker is slow to
  # stop at the end of -fuzztime on a loaded machine; no failing input is written then. That case, and
  # only that one, is run again once; a run that wrote a failing input fails at once.
  after=$({ ls "$corpus" 2>/dev/null || true; } | wc -l)
  if grep -q "context deadline exceeded" "$out" && [ "$after" -eq "$before" ]; then
    echo "--- fuzz $name: the engine timed out stopping (no failing input written); running it again"
    if "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$dir"; then
      rm -f "$out"
      continue
    fi
  fi
  rm -f "$out"
  failed+=("./$dir $name")
done
echo "fuzz: ran ${#targets[@]} target(s), ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  printf '  FAILED: %s\n' "${failed[@]}"
  exit 1
fi
