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
	"github.com/berth-registry/berth/src/pkg/referrers/cachekey"
	"github.com/berth-registry/berth/src/pkg/registry"
)

// peerPoll is how often a node that lost the refresh lock looks for the winner's answer.
const peerPoll = 25 * time.Millisecond

// upstream returns the upstream part of the answer: the cached entry while fresh, else a refreshed one
// (one refresh per key at a time in this process, and across processes while the lock holds), else the
// stale entry when the upstream fails.
func (c *Controller) upstream(ctx context.Context, repo content.Repo, subject digest.Digest, q content.ReferrersQuery) *fetched {
	query, _ := url.ParseQuery(q.RawQuery) // a malformed pair is dropped, as net/http does
	key, err := cachekey.Referrers(repo.Project.ID, repo.Project.RegistryID, repo.Path, subject, query)
	if err != nil {
		return &fetched{err: errcode.ErrNameInvalid.Wrap(err, "cannot cache referrers of %s", repo.Name)}
	}
	old := c.read(ctx, key)
	if old != nil && c.fresh(repo, old) {
		return &fetched{entry: old, status: content.CacheHit}
	}
	f, shared, err := c.flights.Do(ctx, key, func(ctx context.Context) (*fetched, error) {
		return c.refresh(ctx, key, repo, subject, upstreamQuery(query), old), nil
	})
	if shared && c.metrics != nil {
		c.metrics.CoalescedWaiters.WithLabelValues("referrers").Inc()
	}
	if err != nil { // our own request ended, or the refresh panicked
		if old != nil {
			return &fetched{entry: old, status: content.CacheStale, err: err}
		}
		return &fetched{err: err}
	}
	return f
}

// read returns the cached entry under key, or nil. An entry that cannot be decoded is deleted; a cache
// error is a miss.
func (c *Controller) read(ctx context.Context, key string) *entry {
	b, err := c.cache.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, cache.ErrMiss) {
			c.cacheError(ctx, "get", err)
		}
		return nil
	}
	e, err := decode(b)
	if err != nil {
		c.cacheError(ctx, "decode", err)
		if derr := c.cache.Delete(ctx, key); derr != nil {
			c.cacheError(ctx, "delete", derr)
		}
		return nil
	}
	return e
}

// refresh asks the upstream and stores the answer. It runs once per key at a time (the flight group);
// across processes a short cache lock keeps it to one, and a process that loses the lock waits briefly
// for the winner's answer.
func (c *Controller) refresh(ctx context.Context, key string, repo content.Repo, subject digest.Digest, query string, old *entry) *fetched {
	// A flight that ended between our cache read and our joining the group has stored a fresh answer.
	if e := c.read(ctx, key); e != nil && newer(e, old) && c.fresh(repo, e) {
		return &fetched{entry: e, status: content.CacheHit}
	}
	unlock, locked, err := c.cache.TryLock(ctx, key, c.opts.LockTTL)
	switch {
	case err != nil:
		c.cacheError(ctx, "lock", err)
	case locked:
		defer func() {
			if err := unlock(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, cache.ErrLockNotHeld) {
				c.cacheError(ctx, "unlock", err)
			}
		}()
	default:
		if e := c.waitForPeer(ctx, key, old); e != nil {
			return &fetched{entry: e, status: content.CacheHit}
		}
	}

	start := time.Now()
	res, err := c.list(ctx, repo, subject, query)
	c.observe(repo, err, time.Since(start))
	if err != nil && !registry.IsNotFound(err) {
		if old != nil {
			return &fetched{entry: old, status: content.CacheStale, err: err}
		}
		return &fetched{err: err}
	}
	e := &entry{storedAt: c.opts.Now().UTC(), manifests: []ocispec.Descriptor{}, source: "not-found"}
	if err == nil {
		e.manifests = res.Index.Manifests
		e.filters = res.FiltersApplied
		e.source = res.Source.String()
	}
	// A NotFound answer is stored as an empty list: the upstream's authoritative "none", worth the
	// freshness window like any other answer.
	c.store(ctx, key, e)
	return &fetched{entry: e, status: content.CacheMiss}
}

// list asks the upstream and keeps only descriptors that can be served. A list whose every entry was
// unusable is an Invalid error (nothing is cached).
func (c *Controller) list(ctx context.Context, repo content.Repo, subject digest.Digest, query string) (*registry.ReferrersResult, error) {
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
	if dropped > 0 {
		c.log.WarnContext(ctx, "dropped invalid upstream referrers descriptors", "repository", repo.Name, "subject", subject, "dropped", dropped)
		if len(kept) == 0 {
			return nil, &registry.Error{Kind: registry.Invalid, Err: errors.New("every referrers descriptor from the upstream was invalid")}
		}
	}
	res.Index.Manifests = kept
	return res, nil
}

func (c *Controller) store(ctx context.Context, key string, e *entry) {
	b, err := encode(e)
	if err == nil {
		err = c.cache.Set(ctx, key, b, c.opts.CacheTTL)
	}
	if err != nil {
		c.cacheError(ctx, "set", err)
	}
}

// waitForPeer polls the cache while another process holds the refresh lock, for at most the lock's
// TTL, and returns the entry it stored, or nil.
func (c *Controller) waitForPeer(ctx context.Context, key string, old *entry) *entry {
	deadline := time.NewTimer(c.opts.LockTTL)
	defer deadline.Stop()
	tick := time.NewTicker(peerPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline.C:
			return nil
		case <-tick.C:
			if e := c.read(ctx, key); e != nil && newer(e, old) {
				return e
			}
		}
	}
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
	if err != nil {
		outcome = registry.KindOf(err).String()
	}
	c.metrics.UpstreamRequests.WithLabelValues(reg, "referrers", outcome).Inc()
	c.metrics.UpstreamDuration.WithLabelValues(reg, "referrers").Observe(d.Seconds())
}

// fresh reports whether e may be served for repo without asking the upstream.
func (c *Controller) fresh(repo content.Repo, e *entry) bool {
	return c.opts.Now().Sub(e.storedAt) < c.freshness(repo.Project)
}

// newer reports whether e was stored after old (any e is newer than no old).
func newer(e, old *entry) bool { return old == nil || e.storedAt.After(old.storedAt) }

// upstreamQuery is the query forwarded upstream: the client's parameters but n and last (Berth
// paginates the complete list itself), in canonical order.
func upstreamQuery(q url.Values) string {
	out := url.Values{}
	for k, v := range q {
		if k != "n" && k != "last" && k != "" {
			out[k] = v
		}
	}
	return out.Encode()
}
