package lease

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Job is a unit of background work that Every runs; ctx ends when the run must stop (shutdown, or the
// lease was lost, so another node may run the job now).
type Job func(ctx context.Context) error

// EveryOptions tune Every. Zero values take the defaults.
type EveryOptions struct {
	// Poll is how often each node looks whether the job is due (default: interval/10, at least 1 s and at
	// most 1 min). A due job starts at most Poll late.
	Poll time.Duration
	// RunTTL is the lease TTL while a run is in progress, renewed every third of it (default 30 s): a
	// node that dies mid-run delays the next run by at most this.
	RunTTL time.Duration
}

// Every runs job about once per interval across every node that shares locker, until ctx ends: at most
// one node runs it at a time, and a run starts no sooner than interval after the previous run's start
// (on whichever node). Each node looks every Poll whether the lease "job:<name>" is free; the node that
// takes it runs job while renewing the lease, then extends the lease to interval after the run's start
// and lets it expire, so that the next run happens after interval on any node. A node that dies mid-run
// loses the lease after RunTTL and another node runs the job. A job's error is logged; the lease is kept
// all the same, so a failing job is retried after interval, not in a loop. A Redis outage only skips
// runs (logged), it never runs the job on several nodes at once.
func Every(ctx context.Context, locker Locker, name string, interval time.Duration, job Job, log *slog.Logger, opts EveryOptions) {
	if opts.Poll <= 0 {
		opts.Poll = min(max(interval/10, time.Second), time.Minute)
	}
	if opts.RunTTL <= 0 {
		opts.RunTTL = 30 * time.Second
	}
	t := time.NewTicker(opts.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		runOnce(ctx, locker, name, interval, job, log, opts.RunTTL)
	}
}

// runOnce runs job when the lease of name is free.
func runOnce(ctx context.Context, locker Locker, name string, interval time.Duration, job Job, log *slog.Logger, runTTL time.Duration) {
	start := time.Now()
	l, ok, err := locker.TryAcquire(ctx, "job:"+name, max(runTTL, time.Millisecond))
	if err != nil {
		if ctx.Err() == nil {
			log.WarnContext(ctx, "background job skipped: its lease could not be taken", "job", name, "err", err)
		}
		return
	}
	if !ok {
		return // another node runs it, or ran it less than interval ago
	}
	l.Keep(ctx)
	rctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-l.Lost():
			cancel()
		case <-rctx.Done():
		}
	}()
	err = job(rctx)
	cancel()
	l.StopKeeping()
	switch {
	case err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled):
		log.WarnContext(ctx, "background job failed", "job", name, "err", err)
	case err != nil && ctx.Err() == nil:
		log.WarnContext(ctx, "background job stopped: its lease was lost", "job", name)
	}
	// Held until interval after this run started, also when shutting down: no node runs it again sooner.
	ectx, ecancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer ecancel()
	if rest := interval - time.Since(start); rest > 0 {
		_ = l.Extend(ectx, rest)
	} else {
		_ = l.Release(ectx)
	}
}
