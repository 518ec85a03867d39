package referrers

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/referrers/cachekey"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// peerPoll is how often a node that lost the refresh lock looks for the winner's answer.
const peerPoll = 25 * time.Millisecond

// upstream returns the upstream part of the answer: the cached entry while fresh, else a refreshed one
// (one refresh per key at a time in this process, and across processes while the lock holds), else the
// stale entry when the upstream fails.
//
// A request filtered by artifactType is also answered from the unfiltered entry of the same subject:
// while that is fresh instead of asking the upstream (the filter is applied after the merge anyway, and a
// prefetch warms only the unfiltered list), and as the stale answer when the upstream fails and the
// filtered list was never cached. At most maxFilteredPerSubject distinct filters of one subject are
// asked upstream and cached (filters.go); any further filter refreshes the unfiltered list instead and
// is filtered locally, so distinct artifactType values cannot multiply upstream requests or entries.
func (c *Controller) upstream(ctx context.Context, repo content.Repo, subject digest.Digest, q content.ReferrersQuery) *fetched {
	query := requestQuery(q)
	key, err := cachekey.Referrers(repo.Project.ID, repo.Project.RegistryID, repo.Path, subject, query)
	if err != nil {
		return &fetched{err: errcode.ErrNameInvalid.Wrap(err, "cannot cache referrers of %s", repo.Name)}
	}
	old, cacheUp := c.readFirst(ctx, key)
	if old != nil && c.policy.fresh(repo.Project, old) {
		return &fetched{entry: old, status: content.CacheHit}
	}
	var all *entry // the unfiltered entry, for a filtered request
	if base := withoutFilter(query); len(base) != len(query) {
		baseKey, err := cachekey.Referrers(repo.Project.ID, repo.Project.RegistryID, repo.Path, subject, base)
		if err != nil {
			return &fetched{err: errcode.ErrNameInvalid.Wrap(err, "cannot cache referrers of %s", repo.Name)}
		}
		if cacheUp {
			if all, _ = c.readFirst(ctx, baseKey); all != nil && c.policy.fresh(repo.Project, all) {
				return &fetched{entry: all, status: content.CacheHit}
			}
		}
		if !c.filters.admit(baseKey, key) {
			// Too many filters of this subject: the unfiltered list answers, filtered locally.
			key, query, old = baseKey, base, all
		}
	}
	f, shared, err := c.flights.Do(ctx, key, func(ctx context.Context) (*fetched, error) {
		return c.refresh(ctx, key, repo, subject, query.Encode(), old, cacheUp), nil
	})
	if shared && c.metrics != nil {
		c.metrics.CoalescedWaiters.WithLabelValues("referrers").Inc()
	}
	if err != nil { // our own request ended, or the refresh panicked
		f = c.policy.failed(old, err)
	}
	if f.entry == nil && all != nil { // a filtered list never kept: the unfiltered one, stale
		return c.policy.failed(all, f.err)
	}
	return f
}

// requestQuery is the part of the request that changes the upstream's answer, and so both the cache key
// and the query sent upstream (its canonical encoding): the artifactType filter of the typed query (the
// handler's referrersQuery refuses a repeated one), which is also the filter applied to the merged list.
// n and last never enter it (Berth paginates the complete list itself), so they cannot multiply cache
// entries or bypass the freshness window.
func requestQuery(q content.ReferrersQuery) url.Values {
	if q.ArtifactType == "" {
		return url.Values{}
	}
	return url.Values{"artifactType": {q.ArtifactType}}
}

// withoutFilter returns query without its artifactType filter.
func withoutFilter(query url.Values) url.Values {
	out := make(url.Values, len(query))
	for k, v := range query {
		if k != "artifactType" {
			out[k] = v
		}
	}
	return out
}

// readFirst is a request's first read of key: from the node cache when it holds the key, else read.
func (c *Controller) readFirst(ctx context.Context, key string) (*entry, bool) {
	if e := c.near.get(key); e != nil {
		return e, true
	}
	return c.read(ctx, key)
}

// read returns the cached entry under key, or nil. An entry that cannot be decoded is deleted. A cache
// error is a miss, counted; up is false then, and the caller leaves the cache alone for the rest of the
// request, so that a Redis outage costs a request one failed call rather than one per step.
func (c *Controller) read(ctx context.Context, key string) (e *entry, up bool) {
	var err, derr error
	if v, ok := c.cache.(cache.Viewer); ok {
		// The in-process cache lends its bytes: decoding copies what it keeps, so no copy is needed.
		err = v.View(ctx, key, func(b []byte) error {
			e, derr = c.decoded.decode(b)
			return nil
		})
	} else {
		var b []byte
		if b, err = c.cache.Get(ctx, key); err == nil {
			e, derr = c.decoded.decode(b)
		}
	}
	if err != nil {
		if errors.Is(err, cache.ErrMiss) {
			return nil, true
		}
		c.cacheError(ctx, "get", err)
		return nil, false
	}
	if err = derr; err != nil {
		c.near.drop(key)
		c.cacheError(ctx, "decode", err)
		if derr := c.cache.Delete(ctx, key); derr != nil {
			c.cacheError(ctx, "delete", derr)
		}
		return nil, true
	}
	c.near.put(key, e)
	return e, true
}

// refresh asks the upstream and stores the answer. It runs once per key at a time (the flight group).
// Across processes a short lease (pkg/lease, Options.Leases) keeps it to one: a process that finds the
// lease taken waits for the holder's answer, or for the lease to come free (the holder failed) and then
// asks itself. Under the lease the cache is read again first: a refresh that ended after this caller's
// first read (in this process or another) has stored an answer, and asking the upstream again would be a
// second request. The answer is stored only while the lease is still held (its fencing Check), so a
// holder paused past the lease TTL does not overwrite its successor's newer answer. When the cache or
// the lease failed (cacheUp false) the upstream is asked without a lease and nothing is stored.
func (c *Controller) refresh(ctx context.Context, key string, repo content.Repo, subject digest.Digest, query string, old *entry, cacheUp bool) *fetched {
	var held *lease.Lease
	if cacheUp {
		var e *entry
		e, held, cacheUp = c.lockOrWait(ctx, key, old)
		if e != nil {
			return &fetched{entry: e, status: content.CacheHit}
		}
		if held != nil {
			defer c.release(ctx, held)
		}
		if cacheUp {
			if e, cacheUp = c.read(ctx, key); e != nil && newer(e, old) && c.policy.fresh(repo.Project, e) {
				return &fetched{entry: e, status: content.CacheHit}
			}
		}
	}

	var prev []ocispec.Descriptor
	if old != nil {
		prev = old.manifests
	}
	start := time.Now()
	res, err := c.list(ctx, repo, subject, query, prev)
	c.observe(repo, err, time.Since(start))
	if !c.policy.stores(err) {
		return c.policy.failed(old, err)
	}
	// Stored: the answer, or for a NotFound an empty list (policy).
	e := &entry{storedAt: c.opts.Now().UTC(), manifests: []ocispec.Descriptor{}}
	source := sourceNotFound
	if err == nil {
		e.manifests = stableOrder(prev, res.Index.Manifests)
		source = res.Source.String()
	}
	if cacheUp && c.fenced(ctx, held) {
		c.store(ctx, key, e, source)
	}
	return &fetched{entry: e, status: content.CacheMiss}
}

// sourceNotFound is the source of an entry the upstream answered NotFound for.
const sourceNotFound = "not-found"

// list asks the upstream and keeps only descriptors that can be served, cleaned and with doubtful
// artifactTypes repaired (prev is the answer being replaced, whose repairs are reused). A list whose
// every entry was unusable is an Invalid error (nothing is cached).
func (c *Controller) list(ctx context.Context, repo content.Repo, subject digest.Digest, query string, prev []ocispec.Descriptor) (*upstream.ReferrersResult, error) {
	l, err := c.listers.Lister(ctx, repo.Project.RegistryID)
	if err != nil {
		return nil, err
	}
	res, err := l.ListReferrers(ctx, repo.Path, subject.String(), query)
	if err != nil {
		return nil, err
	}
	kept := make([]ocispec.Descriptor, 0, len(res.Index.Manifests))
	for _, d := range res.Index.Manifests {
		if validDescriptor(d, content.MaxManifestSize) {
			kept = append(kept, clean(d))
		}
	}
	dropped := res.Dropped + len(res.Index.Manifests) - len(kept)
	kept, notReferrers := repair(ctx, l, repo.Path, subject, kept, prev)
	dropped += notReferrers
	if dropped > 0 {
		c.log.WarnContext(ctx, "dropped invalid upstream referrers descriptors", "repository", repo.Name, "subject", subject, "dropped", dropped)
		if len(kept) == 0 {
			return nil, &upstream.Error{Kind: upstream.Invalid, Err: errors.New("every referrers descriptor from the upstream was invalid")}
		}
	}
	res.Index.Manifests = kept
	return res, nil
}

func (c *Controller) store(ctx context.Context, key string, e *entry, source string) {
	b, err := encode(e, source)
	if err == nil {
		err = c.cache.Set(ctx, key, b, c.policy.ttl)
	}
	if err != nil {
		c.cacheError(ctx, "set", err)
		return
	}
	c.near.put(key, e)
}

// leaseName is the name of the refresh lease of cache key.
func leaseName(key string) string { return "referrers-refresh:" + key }

// lockOrWait takes the refresh lease of key or, when another process holds it, waits for that process.
// It returns the answer the other process stored (newer than old), or the lease now held by this
// caller, or neither when the wait ended (the lease TTL passed, ctx ended); up is false when the cache
// or the lease failed.
func (c *Controller) lockOrWait(ctx context.Context, key string, old *entry) (e *entry, held *lease.Lease, up bool) {
	held, locked, err := c.leases.TryAcquire(ctx, leaseName(key), c.policy.lockTTL)
	switch {
	case err != nil:
		c.cacheError(ctx, "lock", err)
		return nil, nil, false
	case locked:
		return nil, held, true
	}
	deadline := time.NewTimer(c.policy.lockTTL)
	defer deadline.Stop()
	tick := time.NewTicker(peerPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil, true
		case <-deadline.C:
			return nil, nil, true
		case <-tick.C:
		}
		e, up := c.read(ctx, key)
		if !up {
			return nil, nil, false
		}
		if e != nil && newer(e, old) {
			return e, nil, true
		}
		// The lease came free without a newer answer: the holder failed. Refresh here, under the lease.
		held, locked, err := c.leases.TryAcquire(ctx, leaseName(key), c.policy.lockTTL)
		if err != nil {
			c.cacheError(ctx, "lock", err)
			return nil, nil, false
		}
		if locked {
			return nil, held, true
		}
	}
}

// release gives a refresh lease up; a lease that expired meanwhile is not an error.
func (c *Controller) release(ctx context.Context, held *lease.Lease) {
	if err := held.Release(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, lease.ErrLost) {
		c.cacheError(ctx, "unlock", err)
	}
}

// fenced reports whether an answer refreshed under held (nil: no lease was taken) may be stored: the
// lease is still this caller's. A lost lease means a later holder may have stored a newer answer.
func (c *Controller) fenced(ctx context.Context, held *lease.Lease) bool {
	if held == nil {
		return true
	}
	if err := held.Check(ctx); err != nil {
		if !errors.Is(err, lease.ErrLost) {
			c.cacheError(ctx, "lock", err)
		}
		return false
	}
	return true
}

func (c *Controller) cacheError(ctx context.Context, op string, err error) {
	if c.metrics != nil {
		c.metrics.CacheErrors.WithLabelValues(op).Inc()
	}
	c.log.WarnContext(ctx, "referrers cache error; treated as a miss", "op", op, "err", err)
}

func (c *Controller) observe(repo content.Repo, err error, d time.Duration) {
	if c.metrics == nil {
		return
	}
	reg := registryLabel(repo)
	outcome := "ok"
	switch {
	case err == nil:
	case upstream.KindOf(err) != 0:
		outcome = upstream.KindOf(err).String()
	default:
		outcome = "error"
	}
	c.metrics.UpstreamRequests.WithLabelValues(reg, "referrers-list", outcome).Inc()
	c.metrics.UpstreamDuration.WithLabelValues(reg, "referrers-list").Observe(d.Seconds())
}

// newer reports whether e was stored after old (any e is newer than no old).
func newer(e, old *entry) bool { return old == nil || e.storedAt.After(old.storedAt) }
