package bench

import (
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseCPUList(t *testing.T) {
	m, err := parseCPUList("0,2-3")
	require.NoError(t, err)
	require.Equal(t, 3, m.Count())
	for _, c := range []int{0, 2, 3} {
		require.True(t, m.IsSet(c), "CPU %d", c)
	}
	m, err = parseCPUList("64")
	require.NoError(t, err)
	require.True(t, m.IsSet(64))
	require.Equal(t, 1, m.Count())
	for _, bad := range []string{"", "x", "3-1", "-1", "0-5000", "1,"} {
		_, err := parseCPUList(bad)
		require.Error(t, err, bad)
	}
}

// setOwnCPUs narrows this process to CPU 0 and widens it back; /proc shows each.
func TestSetOwnCPUs(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: nothing to narrow")
	}
	allowed := func() string { return statusField("/proc/self/status", "Cpus_allowed_list") }
	before := allowed()
	if !strings.HasPrefix(before, "0") {
		t.Skipf("CPU 0 is not available to this process (%s)", before)
	}
	defer func() { require.NoError(t, setOwnCPUs(before)) }()
	require.NoError(t, setOwnCPUs("0"))
	require.Equal(t, "0", allowed())
	require.NoError(t, setOwnCPUs(allCPUList()))
	require.Equal(t, allCPUList(), allowed())
}

// setProcCPUs narrows another running process, every thread of it, and widens it back.
func TestSetProcCPUs(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: nothing to narrow")
	}
	cmd := exec.Command("sleep", "30")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	status := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status"
	require.NoError(t, setProcCPUs(cmd.Process.Pid, "1"))
	require.Equal(t, "1", statusField(status, "Cpus_allowed_list"))
	require.NoError(t, setProcCPUs(cmd.Process.Pid, allCPUList()))
	require.Equal(t, allCPUList(), statusField(status, "Cpus_allowed_list"))
	require.Error(t, setProcCPUs(1<<30, "0"), "no such process")
}
