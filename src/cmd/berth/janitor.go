package main

import (
	"context"
	"log/slog"
	"time"
)

// uploadPurger removes abandoned upload sessions (storage.FS).
type uploadPurger interface {
	PurgeUploads(ctx context.Context, cutoff time.Time) (int, error)
}

// purgeUploads removes upload sessions idle for longer than maxAge, every interval, until ctx ends.
func purgeUploads(ctx context.Context, p uploadPurger, interval, maxAge time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n, err := p.PurgeUploads(ctx, now.Add(-maxAge))
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("purging abandoned uploads failed", "err", err)
			case n > 0:
				log.Info("purged abandoned uploads", "count", n)
			}
		}
	}
}
