package lease_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache/redistest"
	"github.com/berth-registry/berth/src/pkg/lease"
)

// lockers are the implementations every test runs against; each call returns two lockers that share
// state, as two nodes on one Redis do (Local: the same one twice).
var lockers = []struct {
	name string
	new  func(t *testing.T) (lease.Locker, lease.Locker)
}{
	{"local", func(*testing.T) (lease.Locker, lease.Locker) { l := lease.NewLocal(); return l, l }},
	{"redis", func(t *testing.T) (lease.Locker, lease.Locker) {
		client, prefix := redistest.New(t, "lease")
		other := redistest.Client(t)
		return lease.NewRedis(client, prefix), lease.NewRedis(other, prefix)
	}},
}

func each(t *testing.T, fn func(t *testing.T, a, b lease.Locker)) {
	for _, l := range lockers {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			a, b := l.new(t)
			fn(t, a, b)
		})
	}
}

func TestExclusiveAndFenced(t *testing.T) {
	each(t, func(t *testing.T, a, b lease.Locker) {
		ctx := t.Context()
		l1 := acquire(t, a, "blob", time.Minute, true)
		acquire(t, b, "blob", time.Minute, false, "a held lease is not granted twice")
		other := acquire(t, b, "other", time.Minute, true, "names are independent")
		require.NoError(t, other.Release(ctx))

		require.NoError(t, l1.Check(ctx))
		require.NoError(t, l1.Release(ctx))
		require.ErrorIs(t, l1.Check(ctx), lease.ErrLost)
		require.ErrorIs(t, l1.Release(ctx), lease.ErrLost, "released twice")

		l2 := acquire(t, b, "blob", time.Minute, true, "free again after release")
		require.Greater(t, l2.Token(), l1.Token(), "a later grant has a larger fencing token")
		require.NoError(t, l2.Release(ctx))
	})
}

// TestExpiryHandsOver: a holder that stops renewing (a dead node) loses the lease after its TTL; the
// next holder gets a larger token, and the old holder's Check, Extend and Release all fail.
func TestExpiryHandsOver(t *testing.T) {
	each(t, func(t *testing.T, a, b lease.Locker) {
		ctx := t.Context()
		old := acquire(t, a, "fill", 100*time.Millisecond, true)
		var next *lease.Lease
		require.Eventually(t, func() bool {
			l, ok, err := b.TryAcquire(ctx, "fill", time.Minute)
			next = l
			return err == nil && ok
		}, 5*time.Second, 20*time.Millisecond, "the expired lease is granted again")
		require.Greater(t, next.Token(), old.Token())
		require.ErrorIs(t, old.Check(ctx), lease.ErrLost)
		require.ErrorIs(t, old.Extend(ctx, time.Minute), lease.ErrLost)
		require.ErrorIs(t, old.Release(ctx), lease.ErrLost)
		require.NoError(t, next.Check(ctx), "the old holder's release left the new grant alone")
		select {
		case <-old.Lost():
		default:
			t.Fatal("Lost is closed once a check found the lease gone")
		}
	})
}

// TestKeepRenews: a kept lease outlives its TTL many times; a keeper that finds its lease taken reports
// it through Lost.
func TestKeepRenews(t *testing.T) {
	each(t, func(t *testing.T, a, b lease.Locker) {
		ctx := t.Context()
		l := acquire(t, a, "kept", 150*time.Millisecond, true)
		l.Keep(ctx)
		deadline := time.Now().Add(600 * time.Millisecond)
		for time.Now().Before(deadline) {
			acquire(t, b, "kept", time.Minute, false, "a kept lease is never free")
			time.Sleep(30 * time.Millisecond)
		}
		require.NoError(t, l.Check(ctx))
		require.NoError(t, l.Release(ctx))

		// Not kept, it expires and is taken; Keep started afterwards finds that out.
		stale := acquire(t, a, "taken", 60*time.Millisecond, true)
		require.Eventually(t, func() bool {
			_, ok, err := b.TryAcquire(ctx, "taken", time.Minute)
			return err == nil && ok
		}, 5*time.Second, 10*time.Millisecond)
		stale.Keep(ctx)
		select {
		case <-stale.Lost():
		case <-time.After(5 * time.Second):
			t.Fatal("Keep did not report the lease lost")
		}
	})
}

// TestEveryRunsOnceAcrossNodes: three nodes run one job every 300 ms for ~1.2 s: it runs about four
// times in all, never on two nodes at once (without the lease each node would run it on every poll).
func TestEveryRunsOnceAcrossNodes(t *testing.T) {
	each(t, func(t *testing.T, a, b lease.Locker) {
		ctx, cancel := context.WithTimeout(t.Context(), 1200*time.Millisecond)
		defer cancel()
		var runs, running, overlap atomic.Int32
		job := func(ctx context.Context) error {
			if running.Add(1) > 1 {
				overlap.Add(1)
			}
			defer running.Add(-1)
			runs.Add(1)
			time.Sleep(20 * time.Millisecond)
			return nil
		}
		log := slog.New(slog.DiscardHandler)
		var wg sync.WaitGroup
		for _, l := range []lease.Locker{a, b, a} {
			wg.Go(func() {
				lease.Every(ctx, l, "janitor", 300*time.Millisecond, job, log, lease.EveryOptions{Poll: 10 * time.Millisecond})
			})
		}
		wg.Wait()
		require.Zero(t, overlap.Load(), "the job ran on two nodes at once")
		require.GreaterOrEqual(t, runs.Load(), int32(3))
		require.LessOrEqual(t, runs.Load(), int32(5), "the job ran more often than once per interval")
	})
}

// TestEveryShutdown: while a run is in progress its lease is held (no other node starts the job), and
// ending Every's context ends the run.
func TestEveryShutdown(t *testing.T) {
	each(t, func(t *testing.T, a, b lease.Locker) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		stopped := make(chan error, 1)
		started := make(chan struct{})
		job := func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			stopped <- ctx.Err()
			return ctx.Err()
		}
		go lease.Every(ctx, a, "long", time.Hour, job, slog.New(slog.DiscardHandler), lease.EveryOptions{Poll: 10 * time.Millisecond, RunTTL: 90 * time.Millisecond})
		<-started
		time.Sleep(300 * time.Millisecond) // past RunTTL: renewals keep it
		acquire(t, b, "job:long", time.Minute, false, "the running job's lease is held")
		cancel()
		select {
		case err := <-stopped:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Fatal("the job did not stop")
		}
	})
}

// TestEveryStopsOnLostLease: a run whose lease disappears (Redis lost the key: a failover without
// replication, a flush) sees its context end, since another node may start the job now.
func TestEveryStopsOnLostLease(t *testing.T) {
	client, prefix := redistest.New(t, "lease")
	locker := lease.NewRedis(client, prefix)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	started := make(chan struct{})
	var once sync.Once
	job := func(ctx context.Context) error { // the lost lease is free: a later poll may run it again
		once.Do(func() { close(started) })
		<-ctx.Done()
		select {
		case stopped <- ctx.Err():
		default:
		}
		return nil
	}
	go lease.Every(ctx, locker, "long", time.Hour, job, slog.New(slog.DiscardHandler), lease.EveryOptions{Poll: 10 * time.Millisecond, RunTTL: 90 * time.Millisecond})
	<-started
	require.NoError(t, client.Del(ctx, prefix+"lease:{job:long}").Err())
	select {
	case err := <-stopped:
		require.ErrorIs(t, err, context.Canceled)
		require.NoError(t, ctx.Err(), "stopped by the lost lease, not by the test's deadline")
	case <-time.After(5 * time.Second):
		t.Fatal("the job did not stop when its lease was lost")
	}
}

// acquire tries lease name on l and requires it granted or not as want says; it returns the grant.
func acquire(t *testing.T, l lease.Locker, name string, ttl time.Duration, want bool, msg ...any) *lease.Lease {
	t.Helper()
	got, ok, err := l.TryAcquire(t.Context(), name, ttl)
	require.NoError(t, err)
	require.Equal(t, want, ok, msg...)
	return got
}
