package quota

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Disk reports the size of the filesystem holding the data dir and its free bytes.
type Disk func() (total, free uint64, err error)

// StatFS returns the Disk of the filesystem holding dir (statfs(2); free counts the blocks available to
// unprivileged users, as df does).
func StatFS(dir string) Disk {
	return func() (uint64, uint64, error) {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
		}
		bs := uint64(st.Bsize) //nolint:gosec // a block size is positive
		return st.Blocks * bs, st.Bavail * bs, nil
	}
}

// Watermarks are percentages of the filesystem: above High, cached content is evicted until the usage
// is at most Low. High 0 turns it off.
type Watermarks struct {
	High, Low int
	Disk      Disk
}

// measure returns the used share of the filesystem in percent and the bytes to free to get down to the
// low watermark (negative: below it already).
func (w Watermarks) measure() (usedPct float64, toFree int64, total, free uint64, err error) {
	total, free, err = w.Disk()
	if err != nil || total == 0 {
		return 0, 0, total, free, err
	}
	used := float64(total - min(free, total))
	low := float64(total) * float64(w.Low) / 100
	return used * 100 / float64(total), int64(used - low), total, free, nil
}

// CheckDisk runs one watermark pass: it records the filesystem's size and usage in the metrics and, when
// the usage is above the high watermark, evicts cached groups across every proxy-cache project, least
// recently used first (pushed content never), until the usage is at most the low watermark or nothing
// evictable is left. It returns the number of groups evicted.
func (e *Evictor) CheckDisk(ctx context.Context, w Watermarks) (int, error) {
	e.disk.Lock()
	defer e.disk.Unlock()
	pct, toFree, total, free, err := w.measure()
	if err != nil {
		return 0, err
	}
	e.gauge(total, free)
	if w.High <= 0 || pct < float64(w.High) {
		return 0, nil
	}
	e.log.WarnContext(ctx, "disk above its high watermark: evicting cached content", "used_percent", pct,
		"high", w.High, "low", w.Low, "bytes_to_free", toFree)
	arts, err := e.store.ListCachedArtifacts(ctx, 0)
	if err != nil {
		return 0, err
	}
	groups, err := buildGroups(ctx, e.manifests, arts)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, g := range groups {
		if toFree <= 0 {
			break
		}
		if g.Pushed {
			continue
		}
		if err := e.evict(ctx, g, ReasonWatermark); err != nil {
			if ctx.Err() != nil {
				return n, err
			}
			continue // logged by evict; the next group may free the space
		}
		n++
		if _, toFree, total, free, err = w.measure(); err != nil {
			return n, err
		}
	}
	e.gauge(total, free)
	return n, nil
}

func (e *Evictor) gauge(total, free uint64) {
	if e.m != nil {
		e.m.StorageCapacityBytes.Set(float64(total))
		e.m.StorageUsedBytes.Set(float64(total - min(free, total)))
	}
}

// RunWatermarks runs CheckDisk every interval until ctx ends; after(d) is the clock (nil: time.After).
// Failures are logged and the next pass tries again.
func (e *Evictor) RunWatermarks(ctx context.Context, w Watermarks, interval time.Duration, after func(time.Duration) <-chan time.Time) {
	if after == nil {
		after = time.After
	}
	for {
		if _, err := e.CheckDisk(ctx, w); err != nil && ctx.Err() == nil {
			e.log.WarnContext(ctx, "watermark pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-after(interval):
		}
	}
}
