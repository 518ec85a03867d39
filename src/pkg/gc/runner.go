package gc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// MaxLogBytes bounds the log stored with one execution; lines past it are counted, not kept.
const MaxLogBytes = 1 << 20

// logTail is how many of the last lines a full log still keeps (the run's summary is among them).
const logTail = 20

// Log is a run's text log, bounded by MaxLogBytes and safe for concurrent use: past the bound, lines are
// counted and only the last logTail are kept.
type Log struct {
	mu      sync.Mutex
	b       strings.Builder
	tail    []string
	dropped int
	now     func() time.Time
}

// NewLog returns an empty log stamping lines with now (nil: time.Now).
func NewLog(now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{now: now}
}

// Printf appends one line.
func (l *Log) Printf(format string, args ...any) {
	line := l.now().UTC().Format(time.RFC3339) + " " + fmt.Sprintf(format, args...) + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropped == 0 && len(l.tail) == 0 && l.b.Len()+len(line) <= MaxLogBytes-logTail*512 {
		l.b.WriteString(line)
		return
	}
	if len(line) > 512 {
		line = line[:511] + "\n"
	}
	l.tail = append(l.tail, line)
	if len(l.tail) > logTail {
		l.tail = l.tail[1:]
		l.dropped++
	}
}

// String returns the log: its head, a line counting the lines dropped, and its last lines.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if l.dropped > 0 {
		s += fmt.Sprintf("... %d lines not kept (log limit %d bytes)\n", l.dropped, MaxLogBytes)
	}
	return s + strings.Join(l.tail, "")
}

// ErrRunning reports that a collection runs already (on this node or another).
var ErrRunning = errors.New("a garbage collection is running already")

// ErrNotRunningHere reports a stop request for an execution this node does not run.
var ErrNotRunningHere = errors.New("the garbage collection is not running on this node")

// Runner starts collections as executions: one at a time across every node sharing the database (a
// lease row, renewed while the run lasts), each with its history row and stored log.
type Runner struct {
	store    meta.GCStore
	coll     *Collector
	log      *slog.Logger
	now      func() time.Time
	leaseTTL time.Duration
	owner    string

	mu      sync.Mutex
	running map[int64]context.CancelFunc
	wg      sync.WaitGroup
}

// NewRunner returns a runner. leaseTTL <= 0 is one minute: a node that dies mid-run blocks others that long.
func NewRunner(store meta.GCStore, coll *Collector, leaseTTL time.Duration, log *slog.Logger) *Runner {
	if leaseTTL <= 0 {
		leaseTTL = time.Minute
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return &Runner{store: store, coll: coll, log: log, now: time.Now, leaseTTL: leaseTTL,
		owner: hex.EncodeToString(b), running: map[int64]context.CancelFunc{}}
}

// Start takes the lease, records a Running execution and runs the collection in the background
// (detached from ctx). ErrRunning when another collection holds the lease.
func (r *Runner) Start(ctx context.Context, kind string, p Params) (*meta.GCExecution, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	ok, err := r.store.AcquireGCLease(ctx, r.owner, r.now().Add(r.leaseTTL))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrRunning
	}
	e := &meta.GCExecution{Kind: kind, Status: meta.GCRunning, Parameters: p.String()}
	if err := r.store.CreateGCExecution(ctx, e); err != nil {
		_ = r.store.ReleaseGCLease(context.WithoutCancel(ctx), r.owner)
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.mu.Lock()
	r.running[e.ID] = cancel
	r.mu.Unlock()
	r.wg.Add(1)
	go r.execute(rctx, cancel, e.ID, p)
	return e, nil
}

// execute runs one collection, renewing the lease, and records its outcome and log.
func (r *Runner) execute(ctx context.Context, cancel context.CancelFunc, id int64, p Params) {
	defer r.wg.Done()
	defer cancel()
	stopRenew := make(chan struct{})
	go r.renew(ctx, cancel, stopRenew)
	log := NewLog(r.now)
	res, err := r.coll.Collect(ctx, p, log)
	close(stopRenew)
	r.mu.Lock()
	delete(r.running, id)
	r.mu.Unlock()
	status := meta.GCSuccess
	switch {
	case err != nil && errors.Is(err, context.Canceled):
		status = meta.GCStopped
		log.Printf("stopped")
	case err != nil:
		status = meta.GCError
		log.Printf("ERROR: %v", err)
	}
	text := log.String()
	bctx, bcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer bcancel()
	if uerr := r.store.UpdateGCExecution(bctx, id, status, &text); uerr != nil {
		r.log.ErrorContext(bctx, "recording garbage collection outcome failed", "id", id, "err", uerr)
	}
	if lerr := r.store.ReleaseGCLease(bctx, r.owner); lerr != nil {
		r.log.WarnContext(bctx, "releasing the garbage collection lease failed", "err", lerr)
	}
	r.log.InfoContext(bctx, "garbage collection finished", "id", id, "status", status, "artifacts", res.ArtifactsDeleted,
		"links", res.LinksDeleted, "blobs", res.BlobsDeleted, "bytes", res.BytesFreed, "dry_run", p.DryRun, "err", err)
}

// renew extends the lease every third of its TTL; losing it cancels the run (another node may start).
func (r *Runner) renew(ctx context.Context, cancel context.CancelFunc, stop <-chan struct{}) {
	t := time.NewTicker(r.leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			ok, err := r.store.RenewGCLease(ctx, r.owner, r.now().Add(r.leaseTTL))
			if err == nil && !ok {
				r.log.ErrorContext(ctx, "garbage collection lease lost; stopping the run")
				cancel()
				return
			}
		}
	}
}

// Stop cancels an execution this node runs; it ends as Stopped.
func (r *Runner) Stop(id int64) error {
	r.mu.Lock()
	cancel, ok := r.running[id]
	r.mu.Unlock()
	if !ok {
		return ErrNotRunningHere
	}
	cancel()
	return nil
}

// Close stops the runs of this node and waits for them to record their outcome.
func (r *Runner) Close() {
	r.mu.Lock()
	for _, cancel := range r.running {
		cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Wait waits for the runs of this node to end (tests).
func (r *Runner) Wait() { r.wg.Wait() }
