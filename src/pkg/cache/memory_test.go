package cache_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/cache/cachetest"
	"github.com/berth-registry/berth/src/pkg/clocktest"
)

// newFakeClock is a test clock that moves only when told to.
func newFakeClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

func TestMemorySuite(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) (cache.Cache, func(time.Duration)) {
		clock := newFakeClock()
		return cache.NewMemory(64<<20, cache.WithClock(clock.Now)), clock.Advance
	})
}

// entry is the charge of one entry with a 2-byte key, as documented on Memory and Disk.
func entry(valueLen int) int64 { return int64(2 + valueLen + 64) }

// requireEvictsLRU checks a cache holding k1, k2, k3 (set in that order, values like val) with room
// for no more: after k1 is read, setting k4 evicts k2, the least recently used, and keeps the others.
func requireEvictsLRU(t *testing.T, c cache.Cache, val []byte) {
	t.Helper()
	ctx := t.Context()
	_, err := c.Get(ctx, "k1") // k1 becomes the most recently used; k2 the least
	require.NoError(t, err)
	require.NoError(t, c.Set(ctx, "k4", val, time.Hour))
	_, err = c.Get(ctx, "k2")
	require.ErrorIs(t, err, cache.ErrMiss, "the least recently used entry is evicted")
	for _, k := range []string{"k1", "k3", "k4"} {
		_, err := c.Get(ctx, k)
		require.NoError(t, err, k)
	}
}

func TestMemoryEvictsLeastRecentlyUsed(t *testing.T) {
	ctx := t.Context()
	m := cache.NewMemory(3 * entry(100))
	val := make([]byte, 100)
	for _, k := range []string{"k1", "k2", "k3"} {
		require.NoError(t, m.Set(ctx, k, val, time.Hour))
	}
	n, used := m.Size()
	require.Equal(t, 3, n)
	require.Equal(t, 3*entry(100), used)

	requireEvictsLRU(t, m, val)

	// One large entry pushes out as many old ones as it needs.
	require.NoError(t, m.Set(ctx, "k5", make([]byte, 2*100+64), time.Hour))
	n, used = m.Size()
	require.Equal(t, 2, n)
	require.LessOrEqual(t, used, 3*entry(100))
}

func TestMemoryReplaceAccountsBytes(t *testing.T) {
	ctx := t.Context()
	m := cache.NewMemory(1 << 20)
	require.NoError(t, m.Set(ctx, "k1", make([]byte, 1000), time.Hour))
	require.NoError(t, m.Set(ctx, "k1", make([]byte, 10), time.Hour))
	n, used := m.Size()
	require.Equal(t, 1, n)
	require.Equal(t, entry(10), used)
	require.NoError(t, m.Delete(ctx, "k1"))
	n, used = m.Size()
	require.Zero(t, n)
	require.Zero(t, used)
}

func TestMemoryTooLarge(t *testing.T) {
	ctx := t.Context()
	m := cache.NewMemory(entry(100))
	require.NoError(t, m.Set(ctx, "k1", make([]byte, 100), time.Hour), "exactly the bound fits")
	require.NoError(t, m.Set(ctx, "k2", make([]byte, 50), time.Hour))
	require.ErrorIs(t, m.Set(ctx, "k2", make([]byte, 101), time.Hour), cache.ErrTooLarge)
	_, err := m.Get(ctx, "k2")
	require.ErrorIs(t, err, cache.ErrMiss, "a refused replacement removes the old value")

	zero := cache.NewMemory(0)
	require.ErrorIs(t, zero.Set(ctx, "k", nil, time.Hour), cache.ErrTooLarge)
	unlock, ok, err := zero.TryLock(ctx, "l", time.Hour)
	require.NoError(t, err)
	require.True(t, ok, "locks do not count against the bound")
	require.NoError(t, unlock(ctx))
}

func TestMemoryExpiredEntriesFreeBytes(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	m := cache.NewMemory(1<<20, cache.WithClock(clock.Now))
	require.NoError(t, m.Set(ctx, "k1", make([]byte, 100), time.Minute))
	clock.Advance(time.Minute)
	_, err := m.Get(ctx, "k1")
	require.ErrorIs(t, err, cache.ErrMiss)
	n, used := m.Size()
	require.Zero(t, n, "an expired entry is dropped when read")
	require.Zero(t, used)
}

func TestMemoryView(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	m := cache.NewMemory(1<<20, cache.WithClock(clock.Now))
	seen := func(key string) (string, error) {
		var got string
		err := m.View(ctx, key, func(b []byte) error { got = string(b); return nil })
		return got, err
	}

	_, err := seen("k")
	require.ErrorIs(t, err, cache.ErrMiss)
	require.NoError(t, m.Set(ctx, "k", []byte("one"), time.Minute))
	got, err := seen("k")
	require.NoError(t, err)
	require.Equal(t, "one", got)

	// A value lent to fn stays intact when the key is replaced meanwhile.
	err = m.View(ctx, "k", func(b []byte) error {
		require.NoError(t, m.Set(ctx, "k", []byte("two"), time.Minute))
		require.Equal(t, "one", string(b))
		return nil
	})
	require.NoError(t, err)
	got, err = seen("k")
	require.NoError(t, err)
	require.Equal(t, "two", got)

	boom := errors.New("boom")
	require.ErrorIs(t, m.View(ctx, "k", func([]byte) error { return boom }), boom, "fn's error is returned")

	clock.Advance(time.Minute)
	_, err = seen("k")
	require.ErrorIs(t, err, cache.ErrMiss, "expired")
	entries, bytes := m.Size()
	require.Zero(t, entries, "the expired entry was dropped")
	require.Zero(t, bytes)
}
