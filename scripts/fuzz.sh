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
  if ! "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$dir"; then
    failed+=("./$dir $name")
  fi
done
echo "fuzz: ran ${#targets[@]} target(s), ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  printf '  FAILED: %s\n' "${failed[@]}"
  exit 1
fi
