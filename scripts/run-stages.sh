#!/usr/bin/env bash
# Runs each named make target in order, whether or not an earlier one failed, then prints one line per
# stage (status and seconds) and exits non-zero when any stage failed. Used by `make test` so one CI run
# reports every failing stage instead of the first.
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}

names=() results=() secs=()
failed=0
for stage in "$@"; do
  echo
  echo "=================== stage: $stage ==================="
  start=$SECONDS
  if "$MAKE" --no-print-directory "$stage"; then rc=0; else rc=$?; fi
  names+=("$stage") secs+=($((SECONDS - start)))
  if [ "$rc" -eq 0 ]; then results+=(PASS); else results+=("FAIL(rc=$rc)"); failed=$((failed + 1)); fi
done

echo
echo "=================== make test summary ==================="
for i in "${!names[@]}"; do
  printf '  %-12s %-12s %5ss\n' "${names[$i]}" "${results[$i]}" "${secs[$i]}"
done
echo "stages: $((${#names[@]} - failed)) of ${#names[@]} succeeded"
[ "$failed" -eq 0 ]
