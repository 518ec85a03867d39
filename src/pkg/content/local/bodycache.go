package local

import (
	"sync"

	"github.com/opencontainers/go-digest"
)

// DefaultManifestCacheBytes is the memory held by manifest bodies when Options.ManifestCacheBytes is 0.
const DefaultManifestCacheBytes = 32 << 20

// maxCachedManifest is the largest manifest body kept in memory; larger ones are read from storage.
const maxCachedManifest = 256 << 10

// bodyCache keeps manifest bytes by digest. Content addressing makes it always consistent: the bytes of a
// digest never change, and whether a repository holds a manifest is decided by its record, never here.
// Only bytes that hash to their digest are added. Bounded by total bytes; when full, entries are dropped
// in map order until a quarter of the room is free. Safe for concurrent use.
type bodyCache struct {
	max int64 // <= 0: disabled

	mu     sync.RWMutex
	bodies map[digest.Digest][]byte
	held   int64
}

func newBodyCache(maxBytes int64) *bodyCache {
	return &bodyCache{max: maxBytes, bodies: map[digest.Digest][]byte{}}
}

// get returns a copy of the cached bytes of d.
func (c *bodyCache) get(d digest.Digest) ([]byte, bool) {
	c.mu.RLock()
	b, ok := c.bodies[d]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

// add keeps a copy of body as the bytes of d when they hash to d and fit.
func (c *bodyCache) add(d digest.Digest, body []byte) {
	n := int64(len(body))
	if c.max <= 0 || n > maxCachedManifest || n > c.max || !d.Algorithm().Available() || d.Algorithm().FromBytes(body) != d {
		return
	}
	b := append([]byte(nil), body...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.bodies[d]; ok {
		return
	}
	if c.held+n > c.max {
		for k, v := range c.bodies { // map order: an arbitrary victim set
			if c.held+n <= c.max-c.max/4 {
				break
			}
			c.held -= int64(len(v))
			delete(c.bodies, k)
		}
	}
	c.bodies[d] = b
	c.held += n
}
