package syncutil_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/clocktest"
	"github.com/berth-registry/berth/src/pkg/syncutil"
)

func TestTTLMapExpiry(t *testing.T) {
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	m := syncutil.NewTTLMap[string, int](8, clk.Now)
	m.Put("a", 1, time.Second)
	m.Put("gone", 2, 0)
	v, ok := m.Get("a")
	require.True(t, ok)
	require.Equal(t, 1, v)
	_, ok = m.Get("gone")
	require.False(t, ok, "ttl 0 stores nothing")
	clk.Advance(time.Second)
	_, ok = m.Get("a")
	require.False(t, ok, "expired at its TTL")
	require.Zero(t, m.Len(), "an expired entry read is dropped")

	m.Put("b", 1, time.Minute)
	m.Delete("b")
	_, ok = m.Get("b")
	require.False(t, ok)
}

func TestTTLMapUpdate(t *testing.T) {
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	m := syncutil.NewTTLMap[string, int](8, clk.Now)
	inc := func(old int, _ bool) int { return old + 1 }
	require.Equal(t, 1, m.Update("k", time.Minute, inc))
	clk.Advance(30 * time.Second)
	require.Equal(t, 2, m.Update("k", time.Hour, inc), "a live entry is updated")
	clk.Advance(30 * time.Second)
	_, ok := m.Get("k")
	require.False(t, ok, "an update keeps the entry's first expiry")
	require.Equal(t, 1, m.Update("k", time.Minute, inc), "an expired entry starts again")
	require.Equal(t, 1, m.Update("x", 0, inc))
	_, ok = m.Get("x")
	require.False(t, ok, "ttl 0: the result is not stored")

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				m.Update("n", time.Hour, inc)
			}
		})
	}
	wg.Wait()
	v, _ := m.Get("n")
	require.Equal(t, 800, v, "updates are atomic")
}

// A flood of distinct keys never grows the map past its bound, and live entries survive a sweep that
// frees enough room.
func TestTTLMapBounded(t *testing.T) {
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	const limit = 64
	m := syncutil.NewTTLMap[string, bool](limit, clk.Now)
	for i := range 10 * limit {
		m.Put("flood-"+strconv.Itoa(i), true, time.Hour)
		require.LessOrEqual(t, m.Len(), limit)
	}

	m = syncutil.NewTTLMap[string, bool](limit, clk.Now)
	for i := range limit / 2 {
		m.Put("short-"+strconv.Itoa(i), true, time.Second)
	}
	for i := range limit / 2 {
		m.Put("long-"+strconv.Itoa(i), true, time.Hour)
	}
	clk.Advance(time.Second)
	m.Put("new", true, time.Hour)
	require.Equal(t, limit/2+1, m.Len(), "the expired half was swept")
	_, ok := m.Get("long-0")
	require.True(t, ok, "live entries survive the sweep")
}
