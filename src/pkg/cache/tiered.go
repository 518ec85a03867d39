package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// tieredStripes is the number of key stripes that order writes and fills of the same key.
const tieredStripes = 64

// Tiered is a Cache with a hot in-process layer (Memory) in front of a persistent one (Disk): the
// embedded default, whose entries survive a restart.
//
//   - Get and View answer from the hot layer; on a miss they read the disk and, when found, copy the
//     value into the hot layer for the rest of its TTL. A hot hit does not touch the disk (so it costs
//     what Memory costs); the disk's own LRU order therefore follows writes and cold reads.
//   - Set and Delete write the disk first, then the hot layer. A value the disk refused (too large,
//     I/O error) is still kept in memory, and the error is returned so the caller counts it; the disk
//     does not keep an older value under that key then.
//   - Locks are the hot layer's (in process).
//
// Writes and fills of one key are serialised (striped locks), so the two layers agree on the last
// writer and a fill never brings back a value deleted meanwhile.
type Tiered struct {
	hot     *Memory
	cold    *Disk
	seed    maphash.Seed
	stripes [tieredStripes]sync.Mutex
}

var (
	_ Cache  = (*Tiered)(nil)
	_ Viewer = (*Tiered)(nil)
)

// NewTiered returns a cache with hot in front of cold. Closing cold is the caller's business.
func NewTiered(hot *Memory, cold *Disk) *Tiered {
	return &Tiered{hot: hot, cold: cold, seed: maphash.MakeSeed()}
}

func (t *Tiered) stripe(key string) *sync.Mutex {
	return &t.stripes[maphash.String(t.seed, key)%tieredStripes]
}

// Get implements Cache.
func (t *Tiered) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := t.hot.Get(ctx, key)
	if !errors.Is(err, ErrMiss) {
		return v, err
	}
	return t.fill(ctx, key)
}

// View implements Viewer: hot hits lend the hot layer's bytes; a value read from disk is lent as read.
func (t *Tiered) View(ctx context.Context, key string, fn func(b []byte) error) error {
	err := t.hot.View(ctx, key, fn)
	if !errors.Is(err, ErrMiss) {
		return err
	}
	v, err := t.fill(ctx, key)
	if err != nil {
		return err
	}
	return fn(v)
}

// fill reads key from disk and copies it into the hot layer.
func (t *Tiered) fill(ctx context.Context, key string) ([]byte, error) {
	mu := t.stripe(key)
	mu.Lock()
	defer mu.Unlock()
	if v, err := t.hot.Get(ctx, key); !errors.Is(err, ErrMiss) { // filled while this caller waited
		return v, err
	}
	v, expires, err := t.cold.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if ttl := expires.Sub(t.hot.now()); ttl > 0 {
		// Too large for memory is fine: the disk keeps serving it.
		if err := t.hot.Set(ctx, key, v, ttl); err != nil && !errors.Is(err, ErrTooLarge) {
			return nil, err
		}
	}
	return v, nil
}

// Set implements Cache.
func (t *Tiered) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ctx, "tiered set", ttl); err != nil {
		return err
	}
	mu := t.stripe(key)
	mu.Lock()
	defer mu.Unlock()
	coldErr := t.cold.Set(ctx, key, value, ttl)
	if coldErr != nil && !errors.Is(coldErr, ErrTooLarge) {
		// Do not leave an older value on disk to come back after a restart (best effort: the disk failed).
		_ = t.cold.Delete(context.WithoutCancel(ctx), key)
	}
	hotErr := t.hot.Set(ctx, key, value, ttl)
	if coldErr != nil && hotErr == nil {
		return fmt.Errorf("cache: kept in memory only: %w", coldErr)
	}
	return errors.Join(coldErr, hotErr)
}

// Delete implements Cache.
func (t *Tiered) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cache: tiered delete: %w", err)
	}
	mu := t.stripe(key)
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(t.cold.Delete(ctx, key), t.hot.Delete(ctx, key))
}

// TryLock implements Cache with the hot layer's in-process locks.
func (t *Tiered) TryLock(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error) {
	return t.hot.TryLock(ctx, key, ttl)
}
