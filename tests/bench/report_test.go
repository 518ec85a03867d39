package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSpliceSection(t *testing.T) {
	block := BeginMarker + "\nNEW\n" + EndMarker + "\n"
	tests := []struct {
		name, doc, want string
	}{
		{"new file", "", docHeader + block},
		{"no markers yet", "# Perf\n\nhand-written", "# Perf\n\nhand-written\n\n" + block},
		{"replaces between markers, keeps the rest", "# Perf\nintro\n" + BeginMarker + "\nOLD\n" + EndMarker + "\n\nnotes\n",
			"# Perf\nintro\n" + block + "\nnotes\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, spliceSection(tt.doc, "\nNEW\n"))
		})
	}

	path := filepath.Join(t.TempDir(), "performance.md")
	require.NoError(t, UpdateDoc(path, "one"))
	require.NoError(t, UpdateDoc(path, "two"))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(b), BeginMarker))
	require.Contains(t, string(b), "\ntwo\n")
	require.NotContains(t, string(b), "one")
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tberth\nVmPeak:\t  900000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n"
	m, err := parseStatus(status)
	require.NoError(t, err)
	require.Equal(t, Memory{RSS: 20 << 20, Peak: 40 << 20}, m)

	_, err = parseStatus("Name:\tx\nVmRSS:\t 1 kB\n")
	require.Error(t, err)

	self, err := ReadMemory(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, self.RSS)
	require.GreaterOrEqual(t, self.Peak, self.RSS)
}

func TestReportMarksTargets(t *testing.T) {
	res := func(rps int64, p99 time.Duration) LoadResult {
		return LoadResult{Requests: rps, Elapsed: time.Second, Lat: []time.Duration{p99}}
	}
	r := &Report{Start: time.Now(), End: time.Now(),
		Proxy: &ProxyResult{Size: 100,
			Direct:  []Pull{{Elapsed: time.Second, Bytes: 100}},
			Through: []Pull{{Elapsed: time.Second, Bytes: 90, Mem: Memory{Peak: 200 << 20}}},
			Conc:    Concurrent{Pullers: 10, Verified: 10, UpstreamBytes: 100, UpstreamGets: 1, Mem: Memory{Peak: 50 << 20}}},
		Referrers: &ReferrersResult{Subjects: 100, Variants: []ReferrersVariant{{Name: "mem",
			Hot:  Comparison{Conns: 32, Berth: []LoadResult{res(50, 10*time.Millisecond)}, Base: []LoadResult{res(100, time.Millisecond)}},
			Many: Comparison{Conns: 32, Berth: []LoadResult{res(10, 10*time.Millisecond)}, Base: []LoadResult{res(100, time.Millisecond)}},
		}}},
	}
	missed := r.TargetsMissed()
	require.ElementsMatch(t, []string{
		"Berth peak RSS during a single cold pull (worst round) (target < 100 MiB)",
		"Warm referrers GET, one hot subject (mem), 32 connections (target >= 0.6)",
		"Warm referrers GET, one hot subject (mem), 32 connections p99 (target < 5 ms)",
	}, missed)
	md := r.Markdown()
	require.Contains(t, md, "| Upstream bytes for 10 concurrent cold pullers | 0.0 MiB = 1.00x the blob (1 GET) | - | - | 1.0x | yes |")
}

func TestMachineFilesystemAndKernel(t *testing.T) {
	require.Equal(t, "proc", fsType("/proc"))
	require.NotContains(t, fsType(t.TempDir()), "?")
	require.Contains(t, fsType(filepath.Join(t.TempDir(), "missing")), "?")
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	require.NoError(t, err)
	require.Contains(t, kernel(), "Linux "+strings.TrimSpace(string(release))+" ")
}
