package main

import (
	"os"
	"strings"
	"time"
)

// testClockEnv names a file whose content, a Go duration ("240h"), is added to the wall clock of every
// time-driven component (retention, pull times, caches): end-to-end tests advance days by rewriting it,
// without sleeping. Unset in production; serve logs a warning when it is set.
const testClockEnv = "BERTH_TEST_CLOCK_OFFSET_FILE"

// offsetClock returns a clock that reads the offset from path on every call (a missing, empty or
// unreadable file is no offset). It is slow on purpose: tests only.
func offsetClock(path string) func() time.Time {
	return func() time.Time {
		b, err := os.ReadFile(path) //nolint:gosec // a path the test harness chose
		if err != nil {
			return time.Now()
		}
		d, err := time.ParseDuration(strings.TrimSpace(string(b)))
		if err != nil {
			return time.Now()
		}
		return time.Now().Add(d)
	}
}
