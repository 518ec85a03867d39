package referrers_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/referrers"
	"github.com/berth-registry/berth/src/pkg/referrers/cachekey"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// countingCache counts the Gets of the cache it wraps (a shared cache: it is no cache.Viewer).
type countingCache struct {
	cache.Cache
	gets atomic.Int64
}

func (c *countingCache) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Cache.Get(ctx, key)
}

// TestNodeCache: with a node cache over Redis, a hot key is read from Redis once per interval; another
// node's refresh shows here once the interval passed; a corrupt entry is found (and healed) at the first
// read after it; an in-process cache gets no node cache.
func TestNodeCache(t *testing.T) {
	const ttl = time.Second
	up, img, sig := newSigned(t)
	prefix := redisPrefix(t)
	e := newEnv(t, up, cacheKind{"redis", func(t *testing.T, _ *clock) cache.Cache { return newRedisCache(t, prefix) }})
	leases := redisLeases(t, prefix)
	withNode := func(o *referrers.Options) { o.NodeCacheTTL, o.Leases = ttl, leases }
	redisA := &countingCache{Cache: newRedisCache(t, prefix)}
	ctlA, _ := e.newController(redisA, e.clients, withNode)
	ctlB, _ := e.newController(newRedisCache(t, prefix), upstream.NewClients(e.store, e.box, upstream.Options{}), withNode)
	repo := e.repo(repoPath)
	subject := img.Manifest.Digest
	list := func(ctl *referrers.Controller, want string) {
		t.Helper()
		p, err := listWith(ctl, repo, subject, "", "", 0)
		require.NoError(t, err)
		require.Equal(t, want, p.Cache)
		require.Equal(t, descs(sig), p.Manifests)
	}

	list(ctlA, content.CacheMiss)
	gets := redisA.gets.Load()
	for range 20 {
		list(ctlA, content.CacheHit)
	}
	require.Equal(t, gets, redisA.gets.Load(), "within the interval: no Redis read")
	e.clock.Advance(ttl)
	list(ctlA, content.CacheHit)
	require.Equal(t, gets+1, redisA.gets.Load(), "after it: one Redis read")

	// Node B refreshes after the freshness window; A sees B's entry once its interval passed.
	e.clock.Advance(freshness)
	up.pushNew(t, img.Manifest, atBundle, false, nil)
	p, err := listWith(ctlB, repo, subject, "", "", 0)
	require.NoError(t, err)
	require.Equal(t, content.CacheMiss, p.Cache)
	require.Len(t, p.Manifests, 2)
	require.Equal(t, 1+1, up.referrersRequests(), "A's first request, B's refresh")
	p, err = listWith(ctlA, repo, subject, "", "", 0)
	require.NoError(t, err)
	require.Len(t, p.Manifests, 2, "A's held entry was past its freshness: A read Redis under the refresh and found B's")
	require.Equal(t, content.CacheHit, p.Cache)
	require.Equal(t, 2, up.referrersRequests(), "no second refresh")

	// A corrupt entry is served from the node cache until the interval ends, then found and healed.
	key := e.key(repo, subject, "")
	require.NoError(t, redisA.Set(t.Context(), key, []byte("corrupt"), time.Hour))
	p, err = listWith(ctlA, repo, subject, "", "", 0)
	require.NoError(t, err)
	require.Equal(t, content.CacheHit, p.Cache, "held by the node")
	e.clock.Advance(ttl)
	p, err = listWith(ctlA, repo, subject, "", "", 0)
	require.NoError(t, err)
	require.Equal(t, content.CacheMiss, p.Cache, "the corrupt entry is a miss")
	require.Len(t, p.Manifests, 2)
	healed, ok := e.cached(key)
	require.True(t, ok, "healed: a valid entry replaced the corrupt one")
	require.Equal(t, cachekey.SourceReferrersAPI, healed.Source)
}

// An in-process cache gets no node cache: every request reads it (it costs no round trip).
func TestNodeCacheOffForMemory(t *testing.T) {
	up, img := newSubject(t, ggcrAPI)
	e := newEnv(t, up, cacheKinds[0])
	require.Equal(t, "memory", cacheKinds[0].name)
	ctl, _ := e.newController(e.cache, e.clients, func(o *referrers.Options) { o.NodeCacheTTL = time.Hour })
	repo := e.repo(repoPath)
	_, err := listWith(ctl, repo, img.Manifest.Digest, "", "", 0)
	require.NoError(t, err)
	key := e.key(repo, img.Manifest.Digest, "")
	require.NoError(t, e.cache.Set(t.Context(), key, []byte("corrupt"), time.Hour))
	p, err := listWith(ctl, repo, img.Manifest.Digest, "", "", 0)
	require.NoError(t, err)
	require.Equal(t, content.CacheMiss, p.Cache, "the corrupt entry was read at once")
}
