// Package audit writes the audit log off the request path: Record queues an entry and returns at once;
// one goroutine writes the queue in batches (one transaction per batch) to a meta.AuditStore. A full
// queue drops entries rather than slow requests down, and counts them; PurgeJob removes old entries (run by lease.Every, once across nodes).
package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// Options tune a Writer. Zero fields take the defaults.
type Options struct {
	// QueueSize bounds the entries waiting to be written (default 10000).
	QueueSize int
	// BatchSize is the most entries written in one transaction (default 500).
	BatchSize int
	// FlushInterval is how long an entry may wait for a batch to fill (default 1s).
	FlushInterval time.Duration
	// Log receives write failures and drop counts (nil: discarded).
	Log *slog.Logger
}

// Writer queues audit entries and writes them in batches. Build it with NewWriter; Close flushes.
type Writer struct {
	store   meta.AuditStore
	opts    Options
	queue   chan meta.AuditEntry
	flush   chan chan struct{}
	done    chan struct{}
	dropped atomic.Int64

	mu     sync.RWMutex // Record holds it shared, Close exclusively: no send on the closed queue
	closed bool
}

var _ auth.AuditSink = (*Writer)(nil)

// NewWriter starts a Writer on store.
func NewWriter(store meta.AuditStore, opts Options) *Writer {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 10000
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	w := &Writer{store: store, opts: opts, queue: make(chan meta.AuditEntry, opts.QueueSize),
		flush: make(chan chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// Record queues e without blocking; when the queue is full, or the writer closed, e is dropped and
// counted.
func (w *Writer) Record(e meta.AuditEntry) {
	if e.OpTime.IsZero() {
		e.OpTime = time.Now().UTC()
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	select {
	case w.queue <- e:
	default:
		w.dropped.Add(1)
	}
}

// Dropped returns how many entries were dropped because the queue was full.
func (w *Writer) Dropped() int64 { return w.dropped.Load() }

// Flush waits until every entry recorded before the call is written (or ctx ends).
func (w *Writer) Flush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case w.flush <- ack:
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued and stops the writer; later records are dropped.
func (w *Writer) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]meta.AuditEntry, 0, w.opts.BatchSize)
	tick := time.NewTicker(w.opts.FlushInterval)
	defer tick.Stop()
	write := func() {
		if len(batch) == 0 {
			return
		}
		// Detached on purpose: entries of requests that ended must still be written.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := w.store.AddAuditEntries(ctx, batch); err != nil {
			w.opts.Log.Error("writing audit entries failed; they are lost", "entries", len(batch), "err", err)
		}
		cancel()
		batch = batch[:0]
	}
	for {
		select {
		case e, ok := <-w.queue:
			if !ok {
				write()
				return
			}
			batch = append(batch, e)
			if len(batch) >= w.opts.BatchSize {
				write()
			}
		case ack := <-w.flush:
			w.drain(&batch, write)
			write()
			close(ack)
		case <-tick.C:
			write()
			if n := w.dropped.Swap(0); n > 0 {
				w.opts.Log.Warn("audit queue full: entries dropped", "dropped", n)
			}
		}
	}
}

// drain moves what is queued now into batch, writing full batches.
func (w *Writer) drain(batch *[]meta.AuditEntry, write func()) {
	for {
		select {
		case e, ok := <-w.queue:
			if !ok {
				return
			}
			*batch = append(*batch, e)
			if len(*batch) >= w.opts.BatchSize {
				write()
			}
		default:
			return
		}
	}
}

// PurgeJob returns the lease.Job that removes entries older than retention, for lease.Every to run once
// per interval across the nodes sharing the store. retention must be positive (a zero retention keeps
// entries forever: schedule no job).
func PurgeJob(store meta.AuditStore, retention time.Duration, log *slog.Logger) lease.Job {
	return func(ctx context.Context) error {
		n, err := store.PurgeAuditEntries(ctx, time.Now().Add(-retention))
		if err != nil {
			return fmt.Errorf("purging the audit log: %w", err)
		}
		if n > 0 {
			log.InfoContext(ctx, "purged old audit log entries", "entries", n, "retention", retention)
		}
		return nil
	}
}
