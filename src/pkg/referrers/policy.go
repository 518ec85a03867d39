package referrers

import (
	"time"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// policy is the referrers cache policy, apart from the I/O, coalescing and locking that carry it out
// (fetch.go). Change what is cached, for how long and what is served when here:
//
//   - fresh: an entry younger than the project's window (metadata proxy_referrer_cache_seconds, else
//     Options.Freshness) is served without asking the upstream;
//   - kept: every answer is stored for Options.CacheTTL, however short its freshness;
//   - stale: when the upstream fails, any kept entry is served (STALE), however old;
//   - empty: an upstream NotFound (the subject or repository is unknown there) is the upstream's
//     authoritative "none": stored as an empty list, fresh like any other answer;
//   - never stored: every other failure (the kept entry, if any, stays as it was);
//   - one refresh: one refresh per key at a time across nodes, under a lock held at most Options.LockTTL.
type policy struct {
	freshness time.Duration // the default window
	ttl       time.Duration // how long an answer is kept
	lockTTL   time.Duration // the cross-node refresh lock
	now       func() time.Time
}

func newPolicy(opts Options) policy {
	return policy{freshness: opts.Freshness, ttl: opts.CacheTTL, lockTTL: opts.LockTTL, now: opts.Now}
}

// window returns the freshness window of project p.
func (p policy) window(proj *meta.Project) time.Duration {
	if d, ok := proj.Seconds(meta.MetaProxyReferrerCacheSecond); ok {
		return d
	}
	return p.freshness
}

// fresh reports whether e may be served for a repository of proj without asking the upstream.
func (p policy) fresh(proj *meta.Project, e *entry) bool {
	return p.now().Sub(e.storedAt) < p.window(proj)
}

// stores reports whether the outcome err of an upstream request is stored (nil: the answer; NotFound:
// an empty list); every other failure is not.
func (p policy) stores(err error) bool {
	return err == nil || upstream.IsNotFound(err)
}

// failed is the outcome of an upstream failure err: the kept entry old served stale when there is
// one, else the failure alone.
func (p policy) failed(old *entry, err error) *fetched {
	if old != nil {
		return &fetched{entry: old, status: content.CacheStale, err: err}
	}
	return &fetched{err: err}
}
