package audit

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
)

func openStore(t *testing.T) meta.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
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

func TestPurgeLoop(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour).UTC()
	require.NoError(t, s.AddAuditEntries(ctx, []meta.AuditEntry{
		{Resource: "old", ResourceType: "artifact", Operation: "create", Username: "u", OpTime: old},
		{Resource: "new", ResourceType: "artifact", Operation: "create", Username: "u", OpTime: time.Now().UTC()},
	}))
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { PurgeLoop(loopCtx, s, 24*time.Hour, time.Hour, slog.New(slog.DiscardHandler)); close(done) }()
	require.Eventually(t, func() bool {
		_, total, err := s.ListAuditEntries(ctx, meta.AuditQuery{}, 0, 0)
		return err == nil && total == 1
	}, 5*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	PurgeLoop(ctx, s, 0, time.Hour, nil) // retention 0: returns at once, keeps everything
}
