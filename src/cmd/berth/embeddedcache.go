package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/config"
	"github.com/berth-registry/berth/src/pkg/metrics"
)

// referrersCacheFile is the persistent referrers cache in the data dir (docs/referrers-proxy.md, "Size
// and durability").
const referrersCacheFile = "referrers-cache.db"

// embeddedCache is the cache without Redis: process memory in front of a file in the data dir (both
// bounded, LRU), or memory alone when referrers-disk-cache-max-bytes is 0. The returned cache is an
// io.Closer when it holds the file.
func embeddedCache(ctx context.Context, cfg config.Config, log *slog.Logger, m *metrics.Metrics, now func() time.Time) (cache.Cache, error) {
	hot := cache.NewMemory(int64(cfg.MemoryCacheBytes), cache.WithClock(now))
	if cfg.ReferrersDiskCacheMaxBytes <= 0 {
		return hot, nil
	}
	path := filepath.Join(cfg.DataDir, referrersCacheFile)
	cold, err := cache.OpenDisk(ctx, path, int64(cfg.ReferrersDiskCacheMaxBytes), cache.WithDiskClock(now), cache.WithCorruptionHook(func(key string, err error) {
		m.CacheErrors.WithLabelValues("disk").Inc()
		log.Warn("persistent referrers cache: corrupt data dropped", "file", path, "key", key, "err", err)
	}))
	if err != nil {
		return nil, fmt.Errorf("referrers disk cache: %w", err)
	}
	return closingTiered{cache.NewTiered(hot, cold), cold}, nil
}

// closingTiered is the tiered cache that closes its file.
type closingTiered struct {
	*cache.Tiered
	cold *cache.Disk
}

func (c closingTiered) Close() error { return c.cold.Close() }
