package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/metatest"
)

func openStore(t *testing.T) meta.Store {
	t.Helper()
	return metatest.Open(t, filepath.Join(t.TempDir(), "meta.db"))
}

// countingStore counts the batches written.
type countingStore struct {
	meta.AuditStore
	batches chan int
}

func (c countingStore) AddAuditEntries(ctx context.Context, e []meta.AuditEntry) error {
	c.batches <- len(e)
	return c.AuditStore.AddAuditEntries(ctx, e)
}

func TestWriterBatchesAndFlushes(t *testing.T) {
	s := openStore(t)
	cs := countingStore{AuditStore: s, batches: make(chan int, 100)}
	w := NewWriter(cs, Options{BatchSize: 10, FlushInterval: time.Hour})
	for i := range 25 {
		w.Record(meta.AuditEntry{Resource: fmt.Sprint("r", i), ResourceType: "artifact", Operation: "create", Username: "u"})
	}
	require.NoError(t, w.Flush(context.Background()))
	_, total, err := s.ListAuditEntries(context.Background(), meta.AuditQuery{}, 0, 0)
	require.NoError(t, err)
	require.EqualValues(t, 25, total)
	var sizes []int
	for len(cs.batches) > 0 {
		sizes = append(sizes, <-cs.batches)
	}
	require.Equal(t, []int{10, 10, 5}, sizes, "full batches, then the rest on Flush")

	w.Record(meta.AuditEntry{Resource: "last", ResourceType: "tag", Operation: "delete", Username: "u"})
	w.Close()
	_, total, err = s.ListAuditEntries(context.Background(), meta.AuditQuery{}, 0, 0)
	require.NoError(t, err)
	require.EqualValues(t, 26, total, "Close writes what is queued")
	require.Zero(t, w.Dropped())
	w.Record(meta.AuditEntry{Resource: "late"})
	require.EqualValues(t, 1, w.Dropped(), "a record after Close is dropped, not a panic")
	w.Close()
}

// blockedStore holds every write until released.
type blockedStore struct {
	meta.AuditStore
	release chan struct{}
}

func (b blockedStore) AddAuditEntries(ctx context.Context, e []meta.AuditEntry) error {
	<-b.release
	return b.AuditStore.AddAuditEntries(ctx, e)
}

func TestWriterDropsWhenFullWithoutBlocking(t *testing.T) {
	s := openStore(t)
	bs := blockedStore{AuditStore: s, release: make(chan struct{})}
	w := NewWriter(bs, Options{QueueSize: 5, BatchSize: 1, FlushInterval: time.Hour})
	for range 50 {
		w.Record(meta.AuditEntry{Resource: "r", ResourceType: "artifact", Operation: "pull", Username: "u"})
	}
	require.Greater(t, w.Dropped(), int64(40), "a stuck database never blocks Record")
	close(bs.release)
	w.Close()
}

// TestPurgeJob: the job removes entries older than the retention and keeps the others; run by
// lease.Every on two nodes sharing a Locker, it purges once per interval.
func TestPurgeJob(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	add := func(resource string, at time.Time) {
		require.NoError(t, s.AddAuditEntries(ctx, []meta.AuditEntry{
			{Resource: resource, ResourceType: "artifact", Operation: "create", Username: "u", OpTime: at.UTC()},
		}))
	}
	add("old", time.Now().Add(-48*time.Hour))
	add("new", time.Now())
	cs := &purgeCounter{AuditStore: s}
	job := PurgeJob(cs, 24*time.Hour, slog.New(slog.DiscardHandler))

	runCtx, cancel := context.WithCancel(ctx)
	locker := lease.NewLocal()
	done := make(chan struct{}, 2)
	for range 2 { // two nodes
		go func() {
			lease.Every(runCtx, locker, "purge-audit", time.Hour, job, slog.New(slog.DiscardHandler),
				lease.EveryOptions{Poll: 5 * time.Millisecond})
			done <- struct{}{}
		}()
	}
	require.Eventually(t, func() bool { return cs.calls.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // ten polls of each node: none runs it again within the hour
	cancel()
	<-done
	<-done
	require.EqualValues(t, 1, cs.calls.Load())
	list, total, err := s.ListAuditEntries(ctx, meta.AuditQuery{}, 0, 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, total)
	require.Equal(t, "new", list[0].Resource)

	failing := PurgeJob(failingPurge{s}, time.Hour, slog.New(slog.DiscardHandler))
	require.ErrorIs(t, failing(ctx), errPurge)
}

// purgeCounter counts purges.
type purgeCounter struct {
	meta.AuditStore
	calls atomic.Int64
}

func (p *purgeCounter) PurgeAuditEntries(ctx context.Context, before time.Time) (int64, error) {
	p.calls.Add(1)
	return p.AuditStore.PurgeAuditEntries(ctx, before)
}

var errPurge = errors.New("purge refused")

// failingPurge fails every purge.
type failingPurge struct{ meta.AuditStore }

func (failingPurge) PurgeAuditEntries(context.Context, time.Time) (int64, error) { return 0, errPurge }
