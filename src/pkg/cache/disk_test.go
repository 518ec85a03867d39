package cache_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/cache/cachetest"
)

// openDisk opens a Disk in a fresh directory, closed at the end of the test.
func openDisk(t *testing.T, path string, maxBytes int64, opts ...cache.DiskOption) *cache.Disk {
	t.Helper()
	d, err := cache.OpenDisk(t.Context(), path, maxBytes, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestDiskSuite(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) (cache.Cache, func(time.Duration)) {
		clock := newFakeClock()
		return openDisk(t, filepath.Join(t.TempDir(), "c.db"), 64<<20, cache.WithDiskClock(clock.Now)), clock.Advance
	})
}

func TestTieredSuite(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) (cache.Cache, func(time.Duration)) {
		clock := newFakeClock()
		hot := cache.NewMemory(64<<20, cache.WithClock(clock.Now))
		cold := openDisk(t, filepath.Join(t.TempDir(), "c.db"), 64<<20, cache.WithDiskClock(clock.Now))
		return cache.NewTiered(hot, cold), clock.Advance
	})
}

func TestDiskSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	path := filepath.Join(t.TempDir(), "c.db")
	d := openDisk(t, path, 1<<20, cache.WithDiskClock(clock.Now)) // closed below, and again at cleanup
	require.NoError(t, d.Set(ctx, "week", []byte("kept"), 7*24*time.Hour))
	require.NoError(t, d.Set(ctx, "hour", []byte("short"), time.Hour))
	_, before, err := d.Size(ctx)
	require.NoError(t, err)
	require.NoError(t, d.Close())

	clock.Advance(2 * time.Hour) // the process was down for two hours
	d = openDisk(t, path, 1<<20, cache.WithDiskClock(clock.Now))
	got, err := d.Get(ctx, "week")
	require.NoError(t, err)
	require.Equal(t, []byte("kept"), got)
	_, err = d.Get(ctx, "hour")
	require.ErrorIs(t, err, cache.ErrMiss, "the TTL counts across the restart")
	n, after, err := d.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, before-int64(len("hour")+len("short")+64), after, "the size accounting is kept in the file")

	clock.Advance(7*24*time.Hour - 2*time.Hour)
	_, err = d.Get(ctx, "week")
	require.ErrorIs(t, err, cache.ErrMiss, "at its TTL")
}

func TestDiskSizeBoundEvictsLeastRecentlyUsed(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	d := openDisk(t, filepath.Join(t.TempDir(), "c.db"), 3*entry(100), cache.WithDiskClock(clock.Now))
	val := make([]byte, 100)
	for _, k := range []string{"k1", "k2", "k3"} {
		require.NoError(t, d.Set(ctx, k, val, time.Hour))
	}
	n, used, err := d.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, 3*entry(100), used)

	requireEvictsLRU(t, d, val)

	// Use order now: k1, k3, k4. k5 pushes k1 out; then an expired entry goes before any live one,
	// whatever its recency: k6 pushes out k5 (expired), not k4 (the least recently used).
	require.NoError(t, d.Set(ctx, "k5", val, time.Minute))
	_, err = d.Get(ctx, "k1")
	require.ErrorIs(t, err, cache.ErrMiss)
	clock.Advance(time.Minute)
	_, err = d.Get(ctx, "k3")
	require.NoError(t, err)
	require.NoError(t, d.Set(ctx, "k6", val, time.Hour))
	for _, k := range []string{"k3", "k4", "k6"} {
		_, err := d.Get(ctx, k)
		require.NoError(t, err, k)
	}
	n, used, err = d.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n, "k5 is gone from the file, not just expired")
	require.Equal(t, 3*entry(100), used)

	// One entry larger than the whole bound is refused and removes the value it would replace.
	err = d.Set(ctx, "k3", make([]byte, 3*entry(100)), time.Hour)
	require.ErrorIs(t, err, cache.ErrTooLarge)
	_, err = d.Get(ctx, "k3")
	require.ErrorIs(t, err, cache.ErrMiss)

	// A value that takes the whole bound evicts everything else, never itself.
	big := make([]byte, 3*entry(100)-2-64)
	require.NoError(t, d.Set(ctx, "kb", big, time.Hour))
	n, used, err = d.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 3*entry(100), used)
	got, err := d.Get(ctx, "kb")
	require.NoError(t, err)
	require.Len(t, got, len(big))
}

func TestDiskCorruptRecordHealed(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "c.db")
	var mu sync.Mutex
	var reported []string
	hook := cache.WithCorruptionHook(func(key string, err error) {
		mu.Lock()
		defer mu.Unlock()
		require.ErrorIs(t, err, cache.ErrCorrupt)
		reported = append(reported, key)
	})
	d := openDisk(t, path, 1<<20, hook)
	require.NoError(t, d.Set(ctx, "k", []byte("the referrers index"), time.Hour))
	require.NoError(t, d.Set(ctx, "other", []byte("untouched"), time.Hour))

	// Behind the cache's back: one byte of the stored value changes.
	raw, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = raw.ExecContext(ctx, `UPDATE entry SET value = ? WHERE key = ?`, []byte("the referrers indeX"), "k")
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	_, err = d.Get(ctx, "k")
	require.ErrorIs(t, err, cache.ErrMiss, "a corrupt record reads as a miss")
	require.Equal(t, []string{"k"}, reported)
	n, used, err := d.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the corrupt record was deleted")
	require.Equal(t, int64(len("other")+len("untouched")+64), used)

	require.NoError(t, d.Set(ctx, "k", []byte("refilled"), time.Hour))
	got, err := d.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, []byte("refilled"), got, "healed by the next Set")
}

func TestDiskCorruptFileRecreated(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"garbage", []byte("this is not a SQLite database, just bytes in its place")},
		{"truncated header", []byte("SQLite format 3\x00\x10\x00")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.db")
			require.NoError(t, os.WriteFile(path, append(tc.content, make([]byte, 4096)...), 0o600))
			var recreated error
			d := openDisk(t, path, 1<<20, cache.WithCorruptionHook(func(key string, err error) {
				require.Empty(t, key)
				recreated = err
			}))
			require.ErrorIs(t, recreated, cache.ErrCorrupt)
			require.NoError(t, d.Set(t.Context(), "k", []byte("v"), time.Hour))
			got, err := d.Get(t.Context(), "k")
			require.NoError(t, err)
			require.Equal(t, []byte("v"), got)
		})
	}
}

// TestDiskConcurrentWriters runs writers through two handles on one file at once (as two processes
// would) with a bound that forces evictions, then checks that the size accounting matches the rows.
func TestDiskConcurrentWriters(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "c.db")
	const bound = 40 * (4 + 200 + 64)
	handles := []*cache.Disk{openDisk(t, path, bound), openDisk(t, path, bound)}
	var wg sync.WaitGroup
	errs := make(chan error, 8*60)
	for w := range 8 {
		d := handles[w%2]
		wg.Go(func() {
			for r := range 60 {
				key := fmt.Sprintf("k%03d", (w*60+r)%100)
				val := fmt.Appendf(make([]byte, 0, 200), "%0200d", w*1000+r)
				if err := d.Set(ctx, key, val, time.Hour); err != nil {
					errs <- err
				}
				if got, err := d.Get(ctx, key); err != nil && !errors.Is(err, cache.ErrMiss) {
					errs <- err
				} else if err == nil && len(got) != 200 {
					errs <- fmt.Errorf("torn value of %d bytes", len(got))
				}
				if r%9 == 0 {
					if err := d.Delete(ctx, key); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	n, used, err := handles[0].Size(ctx)
	require.NoError(t, err)
	require.LessOrEqual(t, used, int64(bound))
	require.Equal(t, int64(n)*(4+200+64), used, "bytes charged = rows held")
}

// TestTieredRestart: what was set before a restart is served by a fresh hot layer from disk, with the
// rest of its TTL, and then from memory.
func TestTieredRestart(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	path := filepath.Join(t.TempDir(), "c.db")
	cold := openDisk(t, path, 1<<20, cache.WithDiskClock(clock.Now)) // closed below, and again at cleanup
	tc := cache.NewTiered(cache.NewMemory(1<<20, cache.WithClock(clock.Now)), cold)
	require.NoError(t, tc.Set(ctx, "k", []byte("answer"), time.Hour))
	require.NoError(t, cold.Close())

	clock.Advance(30 * time.Minute)
	cold = openDisk(t, path, 1<<20, cache.WithDiskClock(clock.Now))
	hot := cache.NewMemory(1<<20, cache.WithClock(clock.Now))
	tc = cache.NewTiered(hot, cold)
	var seen []byte
	require.NoError(t, tc.View(ctx, "k", func(b []byte) error { seen = append(seen, b...); return nil }))
	require.Equal(t, []byte("answer"), seen)
	got, err := hot.Get(ctx, "k")
	require.NoError(t, err, "the disk read filled the hot layer")
	require.Equal(t, []byte("answer"), got)

	clock.Advance(30 * time.Minute)
	_, err = hot.Get(ctx, "k")
	require.ErrorIs(t, err, cache.ErrMiss, "the hot copy keeps the original expiry, not a new TTL")
	_, err = tc.Get(ctx, "k")
	require.ErrorIs(t, err, cache.ErrMiss)
}

// TestTieredDiskRefuses: a value the disk cannot hold is still served from memory, and the error is
// reported; the disk does not keep the older value.
func TestTieredDiskRefuses(t *testing.T) {
	ctx := t.Context()
	cold := openDisk(t, filepath.Join(t.TempDir(), "c.db"), 200)
	hot := cache.NewMemory(1 << 20)
	tc := cache.NewTiered(hot, cold)
	require.NoError(t, tc.Set(ctx, "k", []byte("small"), time.Hour))
	err := tc.Set(ctx, "k", make([]byte, 500), time.Hour)
	require.ErrorIs(t, err, cache.ErrTooLarge)
	got, err := tc.Get(ctx, "k")
	require.NoError(t, err)
	require.Len(t, got, 500)
	_, err = cold.Get(ctx, "k")
	require.ErrorIs(t, err, cache.ErrMiss)
}
