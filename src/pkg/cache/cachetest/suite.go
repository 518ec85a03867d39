// Package cachetest is the behaviour every cache.Cache implementation must share, as one test suite that
// each implementation's tests run against their own instances.
package cachetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache"
)

// Factory returns an empty cache, isolated from every other cache it returns, and a function that moves
// that cache's clock forward by d, expiring whatever a real wait of d would expire. Clean-up is the
// factory's business (t.Cleanup).
type Factory func(t *testing.T) (c cache.Cache, advance func(d time.Duration))

// Run runs the shared suite: every subtest gets a fresh cache from newCache.
func Run(t *testing.T, newCache Factory) {
	tests := []struct {
		name string
		run  func(t *testing.T, c cache.Cache, advance func(time.Duration))
	}{
		{"MissingKeyIsMiss", testMiss},
		{"SetThenGet", testSetGet},
		{"SetReplacesValueAndTTL", testReplace},
		{"Delete", testDelete},
		{"Expiry", testExpiry},
		{"ValuesAreCopied", testCopies},
		{"InvalidTTL", testInvalidTTL},
		{"DoneContext", testDoneContext},
		{"KeysAreIndependent", testKeys},
		{"LockExcludes", testLockExcludes},
		{"LockExpires", testLockExpires},
		{"UnlockTwice", testUnlockTwice},
		{"LocksAndValuesApart", testLocksApart},
		{"ConcurrentTryLock", testConcurrentLock},
		{"ConcurrentSetGet", testConcurrentSetGet},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, advance := newCache(t)
			tc.run(t, c, advance)
		})
	}
}

func testMiss(t *testing.T, c cache.Cache, _ func(time.Duration)) {
	_, err := c.Get(t.Context(), "absent")
	require.ErrorIs(t, err, cache.ErrMiss)
}

func testSetGet(t *testing.T, c cache.Cache, _ func(time.Duration)) {
	ctx := t.Context()
	values := map[string][]byte{
		"empty":  {},
		"text":   []byte(`{"schemaVersion":2}`),
		"binary": {0, 1, 2, 0xff, 0, '\r', '\n'},
		"large":  bytes.Repeat([]byte("0123456789abcdef"), 1<<16), // 1 MiB
	}
	for k, v := range values {
		require.NoError(t, c.Set(ctx, k, v, time.Hour))
	}
	for k, v := range values {
		got, err := c.Get(ctx, k)
		require.NoError(t, err, k)
		require.NotNil(t, got, k)
		require.Equal(t, v, got, k)
	}
}

func testReplace(t *testing.T, c cache.Cache, advance func(time.Duration)) {
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, "k", []byte("one"), time.Hour))
	require.NoError(t, c.Set(ctx, "k", []byte("two"), 3*time.Hour))
	advance(2 * time.Hour) // past the first TTL, within the second
	got, err := c.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, []byte("two"), got)

	require.NoError(t, c.Set(ctx, "k", []byte("three"), time.Minute)) // a shorter TTL replaces a longer one
	advance(time.Minute)
	_, err = c.Get(ctx, "k")
	require.ErrorIs(t, err, cache.ErrMiss)
}

func testDelete(t *testing.T, c cache.Cache, _ func(time.Duration)) {
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, "k", []byte("v"), time.Hour))
	require.NoError(t, c.Delete(ctx, "k"))
	_, err := c.Get(ctx, "k")
	require.ErrorIs(t, err, cache.ErrMiss)
	require.NoError(t, c.Delete(ctx, "k"), "deleting an absent key")
	require.NoError(t, c.Delete(ctx, "never-set"))
}

func testExpiry(t *testing.T, c cache.Cache, advance func(time.Duration)) {
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, "short", []byte("s"), 10*time.Minute))
	require.NoError(t, c.Set(ctx, "long", []byte("l"), time.Hour))
	advance(9 * time.Minute)
	got, err := c.Get(ctx, "short")
	require.NoError(t, err, "before its TTL")
	require.Equal(t, []byte("s"), got)
	advance(time.Minute)
	_, err = c.Get(ctx, "short")
	require.ErrorIs(t, err, cache.ErrMiss, "at its TTL")
	got, err = c.Get(ctx, "long")
	require.NoError(t, err, "an entry with a longer TTL stays")
	require.Equal(t, []byte("l"), got)
}

func testCopies(t *testing.T, c cache.Cache, _ func(time.Duration)) {
	ctx := t.Context()
	v := []byte("original")
	require.NoError(t, c.Set(ctx, "k", v, time.Hour))
	copy(v, "XXXXXXXX")
	got, err := c.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, []byte("original"), got, "Set keeps a copy")
	copy(got, "YYYYYYYY")
	again, err := c.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, []byte("original"), again, "Get returns a copy")
}

func testInvalidTTL(t *testing.T, c cache.Cache, _ func(time.Duration)) {
	ctx := t.Context()
	for _, ttl := range []time.Duration{0, -time.Second} {
		require.ErrorIs(t, c.Set(ctx, "k", []byte("v"), ttl), cache.ErrInvalidTTL, ttl)
		unlock, ok, err := c.TryLock(ctx, "l", ttl)
		require.ErrorIs(t, err, cache.ErrInvalidTTL, ttl)
		require.False(t, ok)
		require.Nil(t, unlock)
	}
	_, err := c.Get(ctx, "k")
	require.ErrorIs(t, err, cache.ErrMiss, "a refused Set stores nothing")
}

func testDoneContext(t *testing.T, c cache.Cache, _ func(time.Duration)) {
	require.NoError(t, c.Set(t.Context(), "k", []byte("v"), time.Hour))
	unlock, ok, err := c.TryLock(t.Context(), "held", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.Get(ctx, "k")
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, cache.ErrMiss)
	require.ErrorIs(t, c.Set(ctx, "k", []byte("w"), time.Hour), context.Canceled)
	require.ErrorIs(t, c.Delete(ctx, "k"), context.Canceled)
	_, ok, err = c.TryLock(ctx, "other", time.Hour)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, ok)
	require.ErrorIs(t, unlock(ctx), context.Canceled)

	got, err := c.Get(t.Context(), "k")
	require.NoError(t, err, "calls with a done context change nothing")
	require.Equal(t, []byte("v"), got)
	require.NoError(t, unlock(t.Context()), "the lock is still held")
}

func testKeys(t *testing.T, c cache.Cache, _ func(time.Duration)) {
	ctx := t.Context()
	keys := []string{
		"", "a", "A", "a:b", "a:b:", "val:a", "lock:a", "v1:referrers:1:2:library/nginx:sha256:abc:",
		"space key", "ünïcødé", "new\nline", strings.Repeat("k", 1000),
	}
	for i, k := range keys {
		require.NoError(t, c.Set(ctx, k, fmt.Appendf(nil, "value-%d", i), time.Hour))
	}
	for i, k := range keys {
		got, err := c.Get(ctx, k)
		require.NoError(t, err, "%q", k)
		require.Equal(t, fmt.Sprintf("value-%d", i), string(got), "%q", k)
	}
}

func testLockExcludes(t *testing.T, c cache.Cache, _ func(time.Duration)) {
	ctx := t.Context()
	unlock, ok, err := c.TryLock(ctx, "fill", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.NotNil(t, unlock)

	other, ok, err := c.TryLock(ctx, "fill", time.Minute)
	require.NoError(t, err, "a held lock is not an error")
	require.False(t, ok)
	require.Nil(t, other)

	unlock2, ok, err := c.TryLock(ctx, "fill-other", time.Minute)
	require.NoError(t, err)
	require.True(t, ok, "locks with other names are independent")
	require.NoError(t, unlock2(ctx))

	require.NoError(t, unlock(ctx))
	again, ok, err := c.TryLock(ctx, "fill", time.Minute)
	require.NoError(t, err)
	require.True(t, ok, "free again after unlock")
	require.NoError(t, again(ctx))
}

func testLockExpires(t *testing.T, c cache.Cache, advance func(time.Duration)) {
	ctx := t.Context()
	first, ok, err := c.TryLock(ctx, "fill", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)

	advance(59 * time.Second)
	_, ok, err = c.TryLock(ctx, "fill", time.Minute)
	require.NoError(t, err)
	require.False(t, ok, "still held before its TTL")

	advance(time.Second)
	second, ok, err := c.TryLock(ctx, "fill", time.Minute)
	require.NoError(t, err)
	require.True(t, ok, "a lock frees itself at its TTL")

	require.ErrorIs(t, first(ctx), cache.ErrLockNotHeld, "an expired holder cannot release the new holder's lock")
	_, ok, err = c.TryLock(ctx, "fill", time.Minute)
	require.NoError(t, err)
	require.False(t, ok, "the second holder still holds it")
	require.NoError(t, second(ctx))

	third, ok, err := c.TryLock(ctx, "fill", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	advance(time.Minute)
	require.ErrorIs(t, third(ctx), cache.ErrLockNotHeld, "unlock after the TTL, with no new holder")
}

func testUnlockTwice(t *testing.T, c cache.Cache, _ func(time.Duration)) {
	ctx := t.Context()
	unlock, ok, err := c.TryLock(ctx, "l", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, unlock(ctx))
	require.ErrorIs(t, unlock(ctx), cache.ErrLockNotHeld)

	next, ok, err := c.TryLock(ctx, "l", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.ErrorIs(t, unlock(ctx), cache.ErrLockNotHeld, "a stale unlock does not release a later holder")
	_, ok, err = c.TryLock(ctx, "l", time.Minute)
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, next(ctx))
}

func testLocksApart(t *testing.T, c cache.Cache, _ func(time.Duration)) {
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, "k", []byte("v"), time.Hour))
	unlock, ok, err := c.TryLock(ctx, "k", time.Hour)
	require.NoError(t, err)
	require.True(t, ok, "a value does not hold the lock of the same name")
	got, err := c.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, []byte("v"), got, "a lock does not touch the value of the same name")

	require.NoError(t, c.Delete(ctx, "k"))
	_, ok, err = c.TryLock(ctx, "k", time.Hour)
	require.NoError(t, err)
	require.False(t, ok, "Delete does not release a lock")
	require.NoError(t, unlock(ctx))
	_, err = c.Get(ctx, "k")
	require.ErrorIs(t, err, cache.ErrMiss)
}

func testConcurrentLock(t *testing.T, c cache.Cache, _ func(time.Duration)) {
	ctx := t.Context()
	const n = 32
	var (
		start   = make(chan struct{})
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []func(context.Context) error
		errs    []error
	)
	for range n {
		wg.Go(func() {
			<-start
			unlock, ok, err := c.TryLock(ctx, "contended", time.Hour)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				winners = append(winners, unlock)
			}
		})
	}
	close(start)
	wg.Wait()
	require.Empty(t, errs)
	require.Len(t, winners, 1, "exactly one of %d concurrent TryLocks wins", n)
	require.NoError(t, winners[0](ctx))
}

func testConcurrentSetGet(t *testing.T, c cache.Cache, _ func(time.Duration)) {
	ctx := t.Context()
	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*3)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				key := fmt.Sprintf("k%d", r%5) // shared keys: every worker writes each
				val := fmt.Appendf(nil, "w%d-r%d", w, r)
				if err := c.Set(ctx, key, val, time.Hour); err != nil {
					errs <- err
				}
				if got, err := c.Get(ctx, key); err != nil {
					errs <- err
				} else if !bytes.HasPrefix(got, []byte("w")) {
					errs <- fmt.Errorf("torn value %q", got)
				}
				if r%7 == 0 {
					if err := c.Delete(ctx, key); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		// A Get racing a Delete may miss; anything else is a failure.
		if !errors.Is(err, cache.ErrMiss) {
			require.NoError(t, err)
		}
	}
}
