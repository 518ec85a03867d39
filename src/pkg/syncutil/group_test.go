package syncutil_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/syncutil"
)

// waitUntil yields until cond holds. It synchronises on state the code under test publishes (the
// coalesced counter), not on time; the deadline is only a watchdog against a hang.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	watchdog := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(watchdog) {
			t.Fatal("condition never held")
		}
		runtime.Gosched()
	}
}

type result struct {
	v      string
	shared bool
	err    error
}

// startN starts n callers of g.Do(ctx, key, fn) and returns the channel their results arrive on.
func startN(ctx context.Context, g *syncutil.Group[string, string], n int, key string, fn func(context.Context) (string, error)) <-chan result {
	out := make(chan result, n)
	for range n {
		go func() {
			v, shared, err := g.Do(ctx, key, fn)
			out <- result{v, shared, err}
		}()
	}
	return out
}

func TestDoCoalesces(t *testing.T) {
	const n = 200
	g := syncutil.NewGroup[string, string](0)
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (string, error) {
		calls.Add(1)
		<-release
		return "index", nil
	}
	results := startN(t.Context(), g, n, "k", fn)
	waitUntil(t, func() bool { return g.Coalesced() == n-1 }) // every caller but the first has joined
	close(release)

	sharedCount := 0
	for range n {
		r := <-results
		require.NoError(t, r.err)
		require.Equal(t, "index", r.v)
		if r.shared {
			sharedCount++
		}
	}
	require.Equal(t, int32(1), calls.Load(), "one run for %d concurrent callers", n)
	require.Equal(t, n-1, sharedCount)
	require.Equal(t, uint64(n-1), g.Coalesced())
}

func TestDoSharesErrors(t *testing.T) {
	const n = 50
	g := syncutil.NewGroup[string, string](0)
	boom := errors.New("upstream 503")
	release := make(chan struct{})
	results := startN(t.Context(), g, n, "k", func(context.Context) (string, error) {
		<-release
		return "", boom
	})
	waitUntil(t, func() bool { return g.Coalesced() == n-1 })
	close(release)
	for range n {
		require.ErrorIs(t, (<-results).err, boom)
	}
}

func TestDoRunsAgainAfterReturn(t *testing.T) {
	g := syncutil.NewGroup[string, int](0)
	var calls int
	fn := func(context.Context) (int, error) { calls++; return calls, nil }
	v, shared, err := g.Do(t.Context(), "k", fn)
	require.NoError(t, err)
	require.False(t, shared)
	require.Equal(t, 1, v)
	v, _, err = g.Do(t.Context(), "k", fn)
	require.NoError(t, err)
	require.Equal(t, 2, v, "results are not kept")
	require.Zero(t, g.Coalesced())
}

func TestDoKeysIndependent(t *testing.T) {
	g := syncutil.NewGroup[string, string](0)
	bRan := make(chan struct{})
	aResult := make(chan error, 1)
	go func() {
		_, _, err := g.Do(t.Context(), "a", func(context.Context) (string, error) {
			<-bRan // finishes only once b has run: b must not wait for a
			return "a", nil
		})
		aResult <- err
	}()
	v, shared, err := g.Do(t.Context(), "b", func(context.Context) (string, error) {
		close(bRan)
		return "b", nil
	})
	require.NoError(t, err)
	require.False(t, shared)
	require.Equal(t, "b", v)
	require.NoError(t, <-aResult)
}

func TestDoWaiterCancelled(t *testing.T) {
	g := syncutil.NewGroup[string, string](0)
	started, release := make(chan struct{}), make(chan struct{})
	fnCtxErr := make(chan error, 1)
	fn := func(ctx context.Context) (string, error) {
		close(started)
		<-release
		fnCtxErr <- ctx.Err()
		return "index", nil
	}
	leader := startN(t.Context(), g, 1, "k", fn)
	<-started
	waiterCtx, cancelWaiter := context.WithCancel(t.Context())
	waiter := startN(waiterCtx, g, 1, "k", fn)
	other := startN(t.Context(), g, 1, "k", fn)
	waitUntil(t, func() bool { return g.Coalesced() == 2 })

	cancelWaiter()
	r := <-waiter // arrives while fn is still blocked: the waiter does not wait for the run
	require.ErrorIs(t, r.err, context.Canceled)
	require.Empty(t, r.v)

	close(release)
	require.NoError(t, <-fnCtxErr, "a waiter's cancellation does not reach fn")
	for _, ch := range []<-chan result{leader, other} {
		r := <-ch
		require.NoError(t, r.err)
		require.Equal(t, "index", r.v)
	}
}

type ctxKey struct{}

func TestDoLeaderCancelled(t *testing.T) {
	g := syncutil.NewGroup[string, string](time.Hour)
	started, release := make(chan struct{}), make(chan struct{})
	fnFinished := make(chan struct{})
	fn := func(ctx context.Context) (string, error) {
		defer close(fnFinished)
		close(started)
		<-release
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if _, ok := ctx.Deadline(); !ok {
			return "", errors.New("fn's context has no deadline from the Group's timeout")
		}
		return ctx.Value(ctxKey{}).(string), nil // the leader's request values reach fn
	}
	leaderCtx, cancelLeader := context.WithCancel(context.WithValue(t.Context(), ctxKey{}, "trace-1"))
	leader := startN(leaderCtx, g, 1, "k", fn)
	<-started
	// The waiter's own context values do not matter: fn runs with the leader's.
	waiter := startN(t.Context(), g, 1, "k", fn)
	waitUntil(t, func() bool { return g.Coalesced() == 1 })

	cancelLeader() // the client that started the fetch hangs up
	r := <-leader
	require.ErrorIs(t, r.err, context.Canceled)

	close(release)
	r = <-waiter
	require.NoError(t, r.err, "the leader hanging up does not fail the waiter")
	require.True(t, r.shared)
	require.Equal(t, "trace-1", r.v)
	<-fnFinished
}

func TestDoFinishesWithoutWaiters(t *testing.T) {
	g := syncutil.NewGroup[string, string](0)
	started, release := make(chan struct{}), make(chan struct{})
	finished := make(chan string, 1)
	ctx, cancel := context.WithCancel(t.Context())
	only := startN(ctx, g, 1, "k", func(ctx context.Context) (string, error) {
		close(started)
		<-release
		finished <- "filled" // e.g. the cache write still happens
		return "filled", ctx.Err()
	})
	<-started
	cancel() // the only caller hangs up
	require.ErrorIs(t, (<-only).err, context.Canceled)

	close(release)
	require.Equal(t, "filled", <-finished, "nobody waits any more, yet the run completes")
}

func TestDoAlreadyCancelled(t *testing.T) {
	g := syncutil.NewGroup[string, string](0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, shared, err := g.Do(ctx, "k", func(context.Context) (string, error) {
		t.Error("fn must not run for a caller that is already gone")
		return "", nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, shared)
}

func TestDoTimeout(t *testing.T) {
	const n = 20
	g := syncutil.NewGroup[string, string](time.Millisecond)
	release := make(chan struct{})
	results := startN(t.Context(), g, n, "k", func(ctx context.Context) (string, error) {
		<-release
		<-ctx.Done() // the Group's timeout, not any caller, ends the run
		return "", ctx.Err()
	})
	waitUntil(t, func() bool { return g.Coalesced() == n-1 })
	close(release)
	for range n {
		require.ErrorIs(t, (<-results).err, context.DeadlineExceeded)
	}
}

func TestDoPanic(t *testing.T) {
	const n = 200
	g := syncutil.NewGroup[string, string](0)
	release := make(chan struct{})
	results := startN(t.Context(), g, n, "k", func(context.Context) (string, error) {
		<-release
		panic("boom")
	})
	waitUntil(t, func() bool { return g.Coalesced() == n-1 })
	close(release)
	for range n {
		r := <-results
		pe, ok := errors.AsType[*syncutil.PanicError](r.err)
		require.True(t, ok, "%v", r.err)
		require.Equal(t, "boom", pe.Value)
		require.NotEmpty(t, pe.Stack)
		require.Contains(t, pe.Error(), "boom")
	}

	v, _, err := g.Do(t.Context(), "k", func(context.Context) (string, error) { return "recovered", nil })
	require.NoError(t, err, "the key is usable again after a panic")
	require.Equal(t, "recovered", v)
}

func TestDoPanicWithError(t *testing.T) {
	g := syncutil.NewGroup[string, string](0)
	sentinel := errors.New("nil map")
	_, _, err := g.Do(t.Context(), "k", func(context.Context) (string, error) { panic(sentinel) })
	require.ErrorIs(t, err, sentinel, "an error panic value is unwrapped")
}

func TestDoGoexit(t *testing.T) {
	g := syncutil.NewGroup[string, string](0)
	_, _, err := g.Do(t.Context(), "k", func(context.Context) (string, error) {
		runtime.Goexit()
		return "", nil
	})
	require.Error(t, err)
	v, _, err := g.Do(t.Context(), "k", func(context.Context) (string, error) { return "ok", nil })
	require.NoError(t, err)
	require.Equal(t, "ok", v)
}

func TestDoConcurrentKeys(t *testing.T) {
	// Many keys and callers at once, for the race detector: every caller gets its own key's value.
	g := syncutil.NewGroup[int, int](0)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := range 400 {
		wg.Go(func() {
			key := i % 8
			v, _, err := g.Do(t.Context(), key, func(context.Context) (int, error) { return key * 10, nil })
			if err == nil && v != key*10 {
				err = errors.New("value of another key")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
