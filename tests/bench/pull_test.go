package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// machineCPU counts busy time when this process spins, and never more than the total.
func TestMachineCPU(t *testing.T) {
	busy0, total0 := machineCPU()
	require.Positive(t, total0)
	require.LessOrEqual(t, busy0, total0)
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
	}
	busy1, total1 := machineCPU()
	require.Greater(t, total1, total0)
	require.Greater(t, busy1, busy0, "a 100 ms spin is busy time")
	require.LessOrEqual(t, busy1-busy0, total1-total0)
	require.Equal(t, "-", busyPct(0))
	require.Equal(t, "97%", busyPct(0.97))
}
