package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/lease"
)

// Across nodes, a blob fill is guarded by a lease (Options.Leases) named after the fill:
//
//   - The node that takes the lease downloads the blob as a single node does, renewing the lease while the
//     download runs, and checks just before it commits that it still holds the lease (the fencing check):
//     a node that was paused past the lease's TTL, whose lease another node took meanwhile, stores nothing.
//   - A node that finds the lease taken waits: every FillPoll it looks whether the blob is stored and
//     linked (shared storage and database), and then serves it like any local blob; its own clients are
//     answered from there (a fill without a temporary file sends its readers to the local copy).
//   - When the lease comes free without the blob stored (the holder failed, or died and its lease expired
//     after FillLeaseTTL), a waiting node takes it and downloads the blob itself.
//   - When the lease cannot be taken because Redis fails, the node downloads without it: a Redis outage
//     costs duplicate downloads, never a failed pull.

// leaseCallTimeout bounds taking a fill lease: a Redis outage delays a fill by at most this.
const leaseCallTimeout = 2 * time.Second

// errFillLeaseLost reports a fill that lost its lease before it committed.
var errFillLeaseLost = errors.New("proxy: the blob fill's lease was lost before commit (another node fills it)")

// fillLease returns the lease under which this node may download d into repo (nil without Options.Leases
// or when Redis failed), or stored=true when another node stored the blob while this one waited.
func (s *Service) fillLease(ctx context.Context, repo content.Repo, d digest.Digest) (l *lease.Lease, stored bool, err error) {
	if s.opts.Leases == nil {
		return nil, false, nil
	}
	name := "fill:" + fillKey(repo, d)
	var tick *time.Ticker
	for {
		actx, cancel := context.WithTimeout(ctx, leaseCallTimeout)
		l, ok, err := s.opts.Leases.TryAcquire(actx, name, s.opts.FillLeaseTTL)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			s.log.WarnContext(ctx, "blob fill lease unavailable; downloading without it", "repository", repo.Name, "digest", d, "err", err)
			return nil, false, nil
		}
		if ok {
			// The holder before may have stored it between this node's last look and the grant.
			if _, err := s.Local.StatBlob(ctx, repo, d); err == nil {
				s.releaseFillLease(ctx, l)
				return nil, true, nil
			}
			l.Keep(ctx)
			return l, false, nil
		}
		if tick == nil {
			tick = time.NewTicker(s.opts.FillPoll)
			defer tick.Stop()
			s.log.DebugContext(ctx, "waiting for another node's blob fill", "repository", repo.Name, "digest", d)
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-tick.C:
		}
		if _, err := s.Local.StatBlob(ctx, repo, d); err == nil {
			return nil, true, nil
		}
	}
}

// leaseContext returns ctx ended early once l is lost, so that a download whose lease another node took
// over stops.
func leaseContext(ctx context.Context, l *lease.Lease) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-l.Lost():
			cancel(errFillLeaseLost)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

// checkFillLease is the fencing check before a fill commits: nil while l (nil: no lease) is held.
func checkFillLease(ctx context.Context, l *lease.Lease) error {
	if l == nil {
		return nil
	}
	if err := l.Check(ctx); err != nil {
		if errors.Is(err, lease.ErrLost) {
			return errFillLeaseLost
		}
		return fmt.Errorf("check blob fill lease: %w", err)
	}
	return nil
}

// releaseFillLease gives l up (nil: nothing), detached from ctx: a waiting node takes over at once.
func (s *Service) releaseFillLease(ctx context.Context, l *lease.Lease) {
	if l == nil {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := l.Release(rctx); err != nil && !errors.Is(err, lease.ErrLost) {
		s.log.WarnContext(ctx, "releasing a blob fill lease failed; it expires by itself", "lease", l.Name(), "err", err)
	}
}
