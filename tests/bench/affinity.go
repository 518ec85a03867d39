package bench

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxCPUs is the size of a unix.CPUSet.
const maxCPUs = 1024

// parseCPUList reads a CPU list as taskset and /proc write them: "1", "0-3", "0,2-3".
func parseCPUList(s string) (unix.CPUSet, error) {
	var m unix.CPUSet
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= maxCPUs {
			return m, fmt.Errorf("bench: bad CPU list %q", s)
		}
		for c := a; c <= b; c++ {
			m.Set(c)
		}
	}
	return m, nil
}

// allCPUList is "0-<n-1>" for this machine's CPUs.
func allCPUList() string { return "0-" + strconv.Itoa(runtime.NumCPU()-1) }

// setOwnCPUs confines every thread of this process to the CPUs of list (see setCPUs).
func setOwnCPUs(list string) error { return setCPUs("self", list) }

// setProcCPUs confines every thread of the running process pid to the CPUs of list (see setCPUs).
func setProcCPUs(pid int, list string) error { return setCPUs(strconv.Itoa(pid), list) }

// setCPUs confines every thread of /proc/<proc> to the CPUs of list (sched_setaffinity per thread;
// threads started later inherit it from the thread that starts them). Twice over the thread list, so
// that a thread started during the first pass is caught by the second.
func setCPUs(proc, list string) error {
	m, err := parseCPUList(list)
	if err != nil {
		return err
	}
	for range 2 {
		tasks, err := os.ReadDir("/proc/" + proc + "/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &m); err != nil && !errors.Is(err, syscall.ESRCH) { // ESRCH: the thread exited
				return fmt.Errorf("bench: sched_setaffinity(%d, %s): %w", tid, list, err)
			}
		}
	}
	return nil
}

// ownCores is how many CPUs this process may run on (0 when unknown).
func ownCores() int {
	var m unix.CPUSet
	if err := unix.SchedGetaffinity(0, &m); err != nil {
		return 0
	}
	return m.Count()
}
