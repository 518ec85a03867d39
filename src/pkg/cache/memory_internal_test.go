package cache

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMemoryLockTableStaysBounded(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := NewMemory(0, WithClock(func() time.Time { return now }))

	held, ok, err := m.TryLock(ctx, "held", 24*time.Hour)
	require.NoError(t, err)
	require.True(t, ok)

	// Locks nobody releases, each expired before the next is taken: sweeps keep the table small.
	for i := range 10000 {
		_, ok, err := m.TryLock(ctx, fmt.Sprintf("l%d", i), time.Second)
		require.NoError(t, err)
		require.True(t, ok)
		now = now.Add(time.Second)
		require.LessOrEqual(t, len(m.locks), 2*2+64, "after %d locks", i)
	}
	require.Contains(t, m.locks, "held", "a live lock survives every sweep")
	require.NoError(t, held(ctx))
}
