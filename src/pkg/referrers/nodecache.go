package referrers

import (
	"time"

	"github.com/berth-registry/berth/src/pkg/syncutil"
)

// nodeCache keeps, for a short time, the entries this node read from or wrote to a shared cache (Redis),
// so that a hot subject (a CI fleet running `cosign verify` on one image) costs a Redis round trip per key
// and interval instead of one per request. It only short-cuts the first read of a request: an entry it
// returns is still checked for freshness, and every read made to coordinate a refresh (under the lock,
// while waiting for a peer) goes to the shared cache. What another node stored is seen here at most ttl
// later; what this node stored, at once. Bounded by count (syncutil.TTLMap, the bounded map of every in-process cache); safe for concurrent use. A nil *nodeCache is
// a valid, always-empty cache.
type nodeCache struct {
	ttl time.Duration
	m   *syncutil.TTLMap[string, *entry]
}

// nodeCacheMax bounds the keys held.
const nodeCacheMax = 4096

// newNodeCache returns a node cache, or nil (off) when ttl <= 0.
func newNodeCache(ttl time.Duration, now func() time.Time) *nodeCache {
	if ttl <= 0 {
		return nil
	}
	return &nodeCache{ttl: ttl, m: syncutil.NewTTLMap[string, *entry](nodeCacheMax, now)}
}

// get returns the entry held under key, or nil.
func (n *nodeCache) get(key string) *entry {
	if n == nil {
		return nil
	}
	e, _ := n.m.Get(key)
	return e
}

// put holds e under key for the TTL.
func (n *nodeCache) put(key string, e *entry) {
	if n != nil {
		n.m.Put(key, e, n.ttl)
	}
}

// drop forgets key.
func (n *nodeCache) drop(key string) {
	if n != nil {
		n.m.Delete(key)
	}
}
