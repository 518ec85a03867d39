package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/berth-registry/berth/src/pkg/lease"
)

// uploadPurger removes abandoned upload sessions (storage.FS).
type uploadPurger interface {
	PurgeUploads(ctx context.Context, cutoff time.Time) (int, error)
}

// purgeUploads is the job that removes upload sessions idle for longer than maxAge. serve runs it with
// lease.Every, so that one node of several sharing the storage runs it per interval.
func purgeUploads(p uploadPurger, maxAge time.Duration, log *slog.Logger) lease.Job {
	return func(ctx context.Context) error {
		n, err := p.PurgeUploads(ctx, time.Now().Add(-maxAge))
		if err != nil {
			return fmt.Errorf("purging abandoned uploads: %w", err)
		}
		if n > 0 {
			log.InfoContext(ctx, "purged abandoned uploads", "count", n)
		}
		return nil
	}
}
