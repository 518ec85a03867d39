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

func TestReadCache(t *testing.T) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
		// between runs after Lookup missed and before Fill, as a write racing the read would.
		between func(c *syncutil.ReadCache[string, int])
		want    bool // "a" is cached after the fill
	}{
		{"a fill is kept", time.Minute, func(*syncutil.ReadCache[string, int]) {}, true},
		{"ttl <= 0 keeps nothing", 0, func(*syncutil.ReadCache[string, int]) {}, false},
		{"a racing invalidation of another key stops the fill", time.Minute, func(c *syncutil.ReadCache[string, int]) {
			c.Invalidate(func(k string, _ int) bool { return k == "b" })
		}, false},
		{"a racing invalidation of everything stops the fill", time.Minute, func(c *syncutil.ReadCache[string, int]) {
			c.Invalidate(nil)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := syncutil.NewReadCache[string, int](8, tc.ttl, nil)
			_, gen, ok := c.Lookup("a")
			require.False(t, ok)
			tc.between(c)
			c.Fill(gen, 1, "a", "a-alias")
			v, _, ok := c.Lookup("a")
			require.Equal(t, tc.want, ok)
			_, _, aliasOK := c.Lookup("a-alias")
			require.Equal(t, tc.want, aliasOK, "every key of a fill is stored together")
			if tc.want {
				require.Equal(t, 1, v)
			}
		})
	}
}

func TestReadCacheInvalidateSelects(t *testing.T) {
	clk := clocktest.New(time.Unix(1_700_000_000, 0))
	c := syncutil.NewReadCache[string, int](8, time.Minute, clk.Now)
	_, gen, _ := c.Lookup("a")
	c.Fill(gen, 1, "a")
	c.Fill(gen, 2, "b")
	c.Invalidate(func(_ string, v int) bool { return v == 2 })
	_, _, ok := c.Lookup("a")
	require.True(t, ok, "unselected entries stay")
	_, _, ok = c.Lookup("b")
	require.False(t, ok)
	clk.Advance(time.Minute)
	_, _, ok = c.Lookup("a")
	require.False(t, ok, "entries expire after the ttl")
}

func TestTTLMapWeighted(t *testing.T) {
	m := syncutil.NewTTLMap[string, []int](100, nil).Weighted(10, func(v []int) int { return len(v) })
	m.Put("a", make([]int, 4), time.Hour)
	m.Put("b", make([]int, 4), time.Hour)
	require.Equal(t, 2, m.Len())
	m.Put("a", make([]int, 6), time.Hour) // replacing a's weight 4 by 6: exactly at the bound
	require.Equal(t, 2, m.Len())
	m.Put("c", make([]int, 1), time.Hour) // over the bound: the map forgets
	_, ok := m.Get("c")
	require.True(t, ok, "the new entry is stored")
	_, ok = m.Get("a")
	require.False(t, ok, "no entry expired, so the full map was emptied")
	m.Put("huge", make([]int, 11), time.Hour)
	_, ok = m.Get("huge")
	require.False(t, ok, "a value heavier than the bound alone is not stored")
	m.DeleteFunc(func(string, []int) bool { return true })
	m.Put("d", make([]int, 10), time.Hour)
	_, ok = m.Get("d")
	require.True(t, ok, "deletes give their weight back")
	require.Equal(t, 1, m.Len())
}
