package local

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/syncutil"
)

// DefaultPullFlushInterval is how often gathered pull times and counts are written when
// Options.PullFlushInterval is 0. It is also the most a crash loses (see docs/retention.md).
const DefaultPullFlushInterval = 5 * time.Second

// DefaultMaxPendingPulls is the number of distinct artifacts gathered before a flush is started early.
const DefaultMaxPendingPulls = 16384

// pullBatcher gathers manifest pulls in memory and writes them in one transaction per batch: every
// flush interval, when maxKeys artifacts are pending, on Flush and on close. Recording a pull takes a
// mutex and updates a map: it never waits for the database, so it is off the request's critical path.
//
// What is pending when the process dies is lost: at most one flush interval of pull times and counts
// (plus a failed batch, which is logged and dropped rather than retried, so a database outage cannot
// grow memory). Pull times only move forward (PullStore.RecordPulls), so batches from several nodes may
// land in any order.
type pullBatcher struct {
	store   meta.PullStore
	off     bool // store is NoPullTracking: record does nothing
	log     *slog.Logger
	maxKeys int

	mu      sync.Mutex
	pending map[string]*meta.Pull
	closed  bool
	dropped int64 // pulls not gathered because pending was full (4 * maxKeys) since the last flush

	flushMu sync.Mutex // one flush at a time
	loop    *syncutil.Loop
}

func newPullBatcher(store meta.PullStore, log *slog.Logger, interval time.Duration, maxKeys int) *pullBatcher {
	b := &pullBatcher{store: store, off: store == NoPullTracking, log: log, maxKeys: maxKeys, pending: map[string]*meta.Pull{}}
	b.loop = syncutil.StartLoop(interval, b.flushLogged)
	return b
}

// record gathers one manifest read of repo@dgst at t: a Pull sets the time and counts, a Check only
// sets the time, an Internal read does nothing.
func (b *pullBatcher) record(repo string, dgst digest.Digest, t time.Time, kind content.PullKind) {
	if kind == content.Internal || b.off {
		return
	}
	key := repo + "@" + dgst.String()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	p, ok := b.pending[key]
	if !ok {
		if len(b.pending) >= 4*b.maxKeys { // the database is not keeping up: bound the memory
			b.dropped++
			return
		}
		p = &meta.Pull{Repository: repo, Digest: dgst.String(), Time: t}
		b.pending[key] = p
		if len(b.pending) == b.maxKeys {
			b.loop.Wake()
		}
	}
	if kind == content.Pull {
		p.Count++
	}
	if t.After(p.Time) {
		p.Time = t
	}
}

// flushLogged is the background flush: what fails is logged and lost.
func (b *pullBatcher) flushLogged() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.flush(ctx); err != nil {
		b.log.WarnContext(ctx, "recording pull times failed; this batch is lost", "err", err)
	}
}

// flush writes what is pending now.
func (b *pullBatcher) flush(ctx context.Context) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	batch, dropped := b.pending, b.dropped
	b.pending, b.dropped = make(map[string]*meta.Pull, len(batch)), 0
	b.mu.Unlock()
	if dropped > 0 {
		b.log.WarnContext(ctx, "pull times not recorded: too many pending", "pulls", dropped)
	}
	if len(batch) == 0 {
		return nil
	}
	pulls := make([]meta.Pull, 0, len(batch))
	for _, p := range batch {
		pulls = append(pulls, *p)
	}
	return b.store.RecordPulls(ctx, pulls)
}

// close stops the loop and writes what is pending.
func (b *pullBatcher) close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.loop.Stop()
	return b.flush(ctx)
}

// NoPullTracking turns pull-time recording off when passed as Options.Pulls (the pull_time_tracking
// setting): manifest reads record nothing, so pull times and pull counts stay as they are, and retention
// by last pull and eviction order fall back to push (fill) times (docs/retention.md).
var NoPullTracking meta.PullStore = noPulls{}

type noPulls struct{}

// RecordPulls records nothing.
func (noPulls) RecordPulls(context.Context, []meta.Pull) error { return nil }

// touchEach is a meta.PullStore over ArtifactStore.TouchPull, one statement per artifact and no
// counts, for services built without Options.Pulls (tests of other packages).
type touchEach struct{ store meta.ArtifactStore }

func (t touchEach) RecordPulls(ctx context.Context, pulls []meta.Pull) error {
	var errs []error
	for _, p := range pulls {
		if err := t.store.TouchPull(ctx, p.Repository, p.Digest, p.Time); err != nil && !errors.Is(err, meta.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
