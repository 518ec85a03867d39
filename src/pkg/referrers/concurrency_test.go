package referrers_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/referrers"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

type listResult struct {
	page *content.ReferrersPage
	err  error
}

// startLists starts n identical cold requests on ctl and returns the channel their results arrive on.
func startLists(ctl *referrers.Controller, repo content.Repo, subject ocispec.Descriptor, n int) <-chan listResult {
	out := make(chan listResult, n)
	for range n {
		go func() {
			p, err := listWith(ctl, repo, subject.Digest, "", "", 0)
			out <- listResult{p, err}
		}()
	}
	return out
}

// TestColdRequestsCoalesce: 200 concurrent identical requests with nothing cached send exactly one
// referrers request upstream; the upstream answer is held until every other request has joined it.
func TestColdRequestsCoalesce(t *testing.T) {
	const n = 200
	eachCache(t, func(t *testing.T, ck cacheKind) {
		up, img, sig := newSigned(t)
		e := newEnv(t, up, ck)
		held, release := up.holdReferrers()
		defer release()

		results := startLists(e.ctl, e.repo(repoPath), img.Manifest, n)
		<-held
		eventually(t, "every other request joins the one upstream request", func() bool {
			return e.ctl.Coalesced() == n-1
		})
		release()
		for range n {
			r := <-results
			require.NoError(t, r.err)
			require.Equal(t, content.CacheMiss, r.page.Cache)
			require.Equal(t, descs(sig), r.page.Manifests)
		}
		require.Equal(t, 1, up.referrersRequests())
		require.Equal(t, float64(n-1), counter(t, e.metrics.CoalescedWaiters, "referrers"))
	})
}

// TestNodesShareRedis: two controllers (two Berth nodes: their own flight groups, upstream clients and
// Redis clients, one Redis and one database) with 50 concurrent cold requests each send exactly one
// referrers request upstream; the other node waits for the answer the first stores.
func TestNodesShareRedis(t *testing.T) {
	const n = 50
	up, img, sig := newSigned(t)
	prefix := redisPrefix(t)
	e := newEnv(t, up, cacheKind{"redis", func(t *testing.T, _ *clock) cache.Cache { return newRedisCache(t, prefix) }})
	shared := withLeases(redisLeases(t, prefix))
	ctlA, _ := e.newController(newRedisCache(t, prefix), e.clients, shared)
	ctlB, _ := e.newController(newRedisCache(t, prefix), upstream.NewClients(e.store, e.box, upstream.Options{}), shared)
	repo := e.repo(repoPath)
	held, release := up.holdReferrers()
	defer release()

	a := startLists(ctlA, repo, img.Manifest, n)
	b := startLists(ctlB, repo, img.Manifest, n)
	<-held
	eventually(t, "every request but one per node joins its node's refresh", func() bool {
		return ctlA.Coalesced() == n-1 && ctlB.Coalesced() == n-1
	})
	release()
	statuses := map[string]int{}
	for _, ch := range []<-chan listResult{a, b} {
		for range n {
			r := <-ch
			require.NoError(t, r.err)
			require.Equal(t, descs(sig), r.page.Manifests)
			statuses[r.page.Cache]++
		}
	}
	require.Equal(t, 1, up.referrersRequests(), "one upstream request for both nodes")
	require.Equal(t, map[string]int{content.CacheMiss: n, content.CacheHit: n}, statuses,
		"the node that asked reports MISS, the node that waited for it HIT")
}

// TestNodesPeerFails: when the node holding the refresh lock fails (the upstream answers 500), the
// waiting node does not sit out the lock's TTL: it sees the lock free without an answer and asks the
// upstream itself. The lock TTL and upstream timeout here are an hour, so waiting them out would hang.
func TestNodesPeerFails(t *testing.T) {
	up, img := newSubject(t, ggcrAPI)
	prefix := redisPrefix(t)
	e := newEnv(t, up, cacheKind{"redis", func(t *testing.T, _ *clock) cache.Cache { return newRedisCache(t, prefix) }})
	long := func(o *referrers.Options) { o.LockTTL, o.UpstreamTimeout = time.Hour, time.Hour }
	leases := redisLeases(t, prefix)
	ctlA, _ := e.newController(newRedisCache(t, prefix), e.clients, long, withLeases(leases))
	leasesB := &leaseWatch{Locker: leases}
	ctlB, _ := e.newController(newRedisCache(t, prefix), upstream.NewClients(e.store, e.box, upstream.Options{}), long, withLeases(leasesB))
	repo := e.repo(repoPath)
	up.setFault(failWith(http.StatusInternalServerError))
	held, release := up.holdReferrers()
	defer release()

	a := startLists(ctlA, repo, img.Manifest, 1)
	<-held // A holds the lock and waits for the upstream
	b := startLists(ctlB, repo, img.Manifest, 1)
	eventually(t, "B finds the lease taken", func() bool { return leasesB.refused.Load() > 0 })
	release()
	for _, ch := range []<-chan listResult{a, b} {
		r := <-ch
		requireCode(t, r.err, errcode.ErrUpstreamUnavailable)
	}
	require.Equal(t, 2, up.referrersRequests(), "B asked after A failed")
}

// leaseWatch counts the TryAcquire calls that found the lease taken.
type leaseWatch struct {
	lease.Locker
	refused atomic.Int32
}

func (w *leaseWatch) TryAcquire(ctx context.Context, name string, ttl time.Duration) (*lease.Lease, bool, error) {
	l, ok, err := w.Locker.TryAcquire(ctx, name, ttl)
	if err == nil && !ok {
		w.refused.Add(1)
	}
	return l, ok, err
}
