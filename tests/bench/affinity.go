package bench

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// cpuMask is a Linux CPU affinity mask for up to 1024 CPUs.
type cpuMask [16]uint64

// parseCPUList reads a CPU list as taskset and /proc write them: "1", "0-3", "0,2-3".
func parseCPUList(s string) (cpuMask, error) {
	var m cpuMask
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= len(m)*64 {
			return m, fmt.Errorf("bench: bad CPU list %q", s)
		}
		for c := a; c <= b; c++ {
			m[c/64] |= 1 << (c % 64)
		}
	}
	return m, nil
}

// allCPUList is "0-<n-1>" for this machine's CPUs.
func allCPUList() string { return "0-" + strconv.Itoa(runtime.NumCPU()-1) }

// setOwnCPUs confines every thread of this process to the CPUs of list (sched_setaffinity per thread;
// threads started later inherit it from the thread that starts them). Twice over the thread list, so
// that a thread started during the first pass is caught by the second.
func setOwnCPUs(list string) error {
	m, err := parseCPUList(list)
	if err != nil {
		return err
	}
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
			if e != 0 && !errors.Is(e, syscall.ESRCH) { // ESRCH: the thread exited meanwhile
				return fmt.Errorf("bench: sched_setaffinity(%d, %s): %w", tid, list, e)
			}
		}
	}
	return nil
}
