// Package cache is a small byte-value cache with per-entry TTL and short named locks, behind one
// interface with two implementations: Redis (shared between Berth instances; any
// redis.UniversalClient, so standalone, Sentinel and Cluster work) and Memory (one process, bounded by
// total bytes with LRU eviction).
//
// The cache is an optimisation, never a source of truth: callers treat every error from Get as a miss
// and every error from Set, Delete or an unlock as something to count and log, not to fail a request on.
// The shared behaviour of both implementations is checked by one test suite, package cachetest.
package cache

import (
	"context"
	"errors"
	"fmt"
	"time"
)

var (
	// ErrMiss reports that the key is absent or its TTL has passed. It is the only error that means
	// "not cached"; any other error from Get is a failure of the cache itself (also to be treated as a
	// miss by callers, but counted as an error).
	ErrMiss = errors.New("cache: miss")
	// ErrInvalidTTL is returned by Set and TryLock when ttl is not positive.
	ErrInvalidTTL = errors.New("cache: ttl must be positive")
	// ErrTooLarge is returned by Set when the entry cannot fit the cache's size bound at all (Memory).
	ErrTooLarge = errors.New("cache: entry larger than the cache bound")
	// ErrLockNotHeld is returned by an unlock function when the lock is no longer held by that holder:
	// it expired (and may since have been taken by someone else) or was already released.
	ErrLockNotHeld = errors.New("cache: lock not held")
)

// Viewer is implemented by caches that can lend a stored value without copying it (Memory). View calls
// fn with the value under key, or returns an error wrapping ErrMiss (fn is not called then); fn must
// neither modify b nor keep it after it returns. View returns fn's error.
type Viewer interface {
	View(ctx context.Context, key string, fn func(b []byte) error) error
}

var _ Viewer = (*Memory)(nil)

// Cache stores byte values under string keys, each with its own TTL, and hands out short locks.
//
// Values and locks live in separate key spaces: TryLock("k") neither reads nor changes the value stored
// under "k", and Delete("k") does not release a lock named "k". Implementations are safe for concurrent
// use. Every method honours ctx: a call made with a done context returns an error wrapping ctx.Err().
type Cache interface {
	// Get returns a copy of the value stored under key, or an error wrapping ErrMiss when there is none
	// or its TTL has passed. A stored empty value is returned as a non-nil empty slice.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores a copy of value under key for ttl, replacing any previous value and TTL. ttl must be
	// positive (ErrInvalidTTL otherwise).
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes the value stored under key. Deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// TryLock takes the lock named key for ttl if nobody holds it, without waiting. On success it returns
	// ok=true and an unlock function that releases the lock only if this holder still holds it
	// (ErrLockNotHeld otherwise, e.g. after the ttl passed). When the lock is held by someone else it
	// returns ok=false, a nil unlock and a nil error. The lock expires by itself after ttl, so a crashed
	// holder cannot keep it. ttl must be positive (ErrInvalidTTL otherwise).
	TryLock(ctx context.Context, key string, ttl time.Duration) (unlock func(context.Context) error, ok bool, err error)
}

// checkTTL is the precondition of Set and TryLock: a live ctx (its error wrapped as "cache: <op>: ...")
// and a positive ttl (ErrInvalidTTL).
func checkTTL(ctx context.Context, op string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cache: %s: %w", op, err)
	}
	if ttl <= 0 {
		return ErrInvalidTTL
	}
	return nil
}
