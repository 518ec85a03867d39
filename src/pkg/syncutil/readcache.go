package syncutil

import (
	"sync"
	"sync/atomic"
	"time"
)

// ReadCache is the in-process read-through cache of a store whose writes pass through the same
// process: a bounded TTLMap plus the rule that keeps it from serving a stale answer after a local
// write. A read takes a generation with Lookup before it reads the store; Fill stores its result only
// if no Invalidate happened since, so a read that raced a write is never cached. Values are stored and
// handed out as given: a caller whose values are mutable copies them on the way in and out. Safe for
// concurrent use; the zero ReadCache is not usable, use NewReadCache.
type ReadCache[K comparable, V any] struct {
	m   *TTLMap[K, V]
	ttl time.Duration

	mu  sync.Mutex // orders Fill against Invalidate
	gen atomic.Uint64
}

// NewReadCache returns an empty cache of at most limit entries kept for ttl (ttl <= 0: nothing is
// kept), whose expiry follows now (nil: time.Now). Weighted on the returned cache's Map bounds it
// further.
func NewReadCache[K comparable, V any](limit int, ttl time.Duration, now func() time.Time) *ReadCache[K, V] {
	return &ReadCache[K, V]{m: NewTTLMap[K, V](limit, now), ttl: ttl}
}

// Map is the bounded map behind c (to make it Weighted before use, or for tests to inspect it).
func (c *ReadCache[K, V]) Map() *TTLMap[K, V] { return c.m }

// Lookup returns the live value under k, and the generation a Fill after a miss must pass.
func (c *ReadCache[K, V]) Lookup(k K) (v V, gen uint64, ok bool) {
	gen = c.gen.Load()
	v, ok = c.m.Get(k)
	return v, gen, ok
}

// Caching reports whether Fill keeps anything (a ttl > 0), so that callers skip copying what it
// would drop.
func (c *ReadCache[K, V]) Caching() bool { return c.ttl > 0 }

// Fill stores v under every key of keys unless an Invalidate happened since gen was taken.
func (c *ReadCache[K, V]) Fill(gen uint64, v V, keys ...K) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	for _, k := range keys {
		c.m.Put(k, v, c.ttl)
	}
}

// Invalidate drops the entries match selects (nil: every entry) and stops reads in flight from filling
// the cache. Callers run it after a write whatever its outcome: a failed write may still have committed.
func (c *ReadCache[K, V]) Invalidate(match func(K, V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if match == nil {
		c.m.Clear()
		return
	}
	c.m.DeleteFunc(match)
}
