package referrers

import (
	"sync"
	"time"
)

// nodeCache keeps, for a short time, the entries this node read from or wrote to a shared cache (Redis),
// so that a hot subject (a CI fleet running `cosign verify` on one image) costs a Redis round trip per key
// and interval instead of one per request. It only short-cuts the first read of a request: an entry it
// returns is still checked for freshness, and every read made to coordinate a refresh (under the lock,
// while waiting for a peer) goes to the shared cache. What another node stored is seen here at most ttl
// later; what this node stored, at once. Bounded by count; safe for concurrent use. A nil *nodeCache is
// a valid, always-empty cache.
type nodeCache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]nodeEntry
}

type nodeEntry struct {
	e       *entry
	expires time.Time
}

// nodeCacheMax bounds the keys held; when full, expired keys go, and if none had, all of them.
const nodeCacheMax = 4096

// newNodeCache returns a node cache, or nil (off) when ttl <= 0.
func newNodeCache(ttl time.Duration, now func() time.Time) *nodeCache {
	if ttl <= 0 {
		return nil
	}
	return &nodeCache{ttl: ttl, now: now, m: map[string]nodeEntry{}}
}

// get returns the entry held under key, or nil.
func (n *nodeCache) get(key string) *entry {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ne, ok := n.m[key]
	if !ok {
		return nil
	}
	if !n.now().Before(ne.expires) {
		delete(n.m, key)
		return nil
	}
	return ne.e
}

// put holds e under key for the TTL.
func (n *nodeCache) put(key string, e *entry) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.m[key]; !ok && len(n.m) >= nodeCacheMax {
		t := n.now()
		for k, ne := range n.m {
			if !t.Before(ne.expires) {
				delete(n.m, k)
			}
		}
		if len(n.m) >= nodeCacheMax {
			clear(n.m)
		}
	}
	n.m[key] = nodeEntry{e: e, expires: n.now().Add(n.ttl)}
}

// drop forgets key.
func (n *nodeCache) drop(key string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	delete(n.m, key)
	n.mu.Unlock()
}
