// Package referrers implements the Proxy Referrer API: the referrers of content in a proxy-cache project
// whose metadata proxy_referrer_api is "true" are the upstream's referrers (its API, or its referrers tag
// schema when it has none) merged with the referrers held in the project, de-duplicated by digest,
// filtered after the merge and paginated by Berth itself.
//
// Upstream descriptors are checked and cleaned: entries that are not manifests or carry invalid digests are
// dropped, fields the spec does not define for referrers are removed, and an artifactType an upstream
// reported wrongly (go-containerregistry reports config.mediaType, which is the empty type for cosign v3
// bundles) is repaired from the referrer manifest itself.
//
// The upstream part of each answer is cached (Redis or process memory) under a versioned key derived from
// the normalised request; within the project's freshness window it is served without asking the upstream,
// after it one request per key goes upstream however many clients ask (in this process through a flight
// group, across processes through a short cache lock), and when the upstream fails the cached answer is
// served up to its TTL (STALE), else the referrers held locally (LOCAL), else 503. Local referrers are
// merged at read time, so a local push is visible at once. A refresh keeps the order of the entries it
// replaces, so pagination cursors stay valid across refreshes.
package referrers

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/metrics"
	"github.com/berth-registry/berth/src/pkg/ociindex"
	"github.com/berth-registry/berth/src/pkg/syncutil"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// Lister is the part of an upstream registry client the controller uses (upstream.Client).
type Lister interface {
	// ListReferrers lists the upstream's referrers of ref in repo (its API, or its tag schema).
	ListReferrers(ctx context.Context, repo, ref, rawQuery string) (*upstream.ReferrersResult, error)
	// GetManifest reads a manifest by digest; used to repair descriptors whose artifactType the upstream
	// reported wrongly.
	GetManifest(ctx context.Context, repo, ref string) (*upstream.Manifest, error)
}

// Listers returns the upstream lister of a registry.
type Listers interface {
	Lister(ctx context.Context, registryID int64) (Lister, error)
}

// LocalIndex is the referrer index of the artifacts Berth holds (meta.ArtifactStore).
type LocalIndex interface {
	ListReferrers(ctx context.Context, repo, subject, artifactType string) ([]*meta.Artifact, error)
	// GetArtifact returns the artifact with that digest in repo (its Origin tells whether it was pushed
	// into the project or pulled through), or an error wrapping meta.ErrNotFound.
	GetArtifact(ctx context.Context, repo, digest string) (*meta.Artifact, error)
}

// Defaults of Options.
const (
	DefaultCacheTTL        = 7 * 24 * time.Hour
	DefaultFreshness       = 30 * time.Second
	DefaultLockTTL         = 10 * time.Second
	DefaultUpstreamTimeout = 60 * time.Second
)

// Options tune the controller. Zero values take the defaults above.
type Options struct {
	CacheTTL        time.Duration // how long an upstream answer is kept (served when the upstream fails)
	Freshness       time.Duration // default window in which a cached answer is served without asking
	PageSize        int           // entries per page when the client sends no n (content.NewPageRule)
	MaxPageSize     int           // the largest n honoured (content.NewPageRule)
	LockTTL         time.Duration // cross-process refresh lock
	UpstreamTimeout time.Duration // bound on one upstream refresh
	// NodeCacheTTL, with a shared cache (one that is not a cache.Viewer, i.e. Redis), is how long this
	// node reuses an entry it read or wrote without reading the shared cache again (nodecache.go).
	// 0 = off: every request reads the shared cache.
	NodeCacheTTL time.Duration
	// Leases grants the cross-node refresh lease of a key (lease.Redis for nodes sharing a Redis;
	// nil: lease.NewLocal, this process only).
	Leases lease.Locker
	Now    func() time.Time
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.CacheTTL, DefaultCacheTTL)
	def(&o.Freshness, DefaultFreshness)
	def(&o.LockTTL, DefaultLockTTL)
	def(&o.UpstreamTimeout, DefaultUpstreamTimeout)
	if o.Leases == nil {
		o.Leases = lease.NewLocal()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Controller serves referrers for every project: proxied for proxy-cache projects with the toggle on,
// local otherwise.
type Controller struct {
	local   content.Referrers
	index   LocalIndex
	listers Listers
	cache   cache.Cache
	metrics *metrics.Metrics
	log     *slog.Logger
	opts    Options
	policy  policy // what is fresh, kept, served stale, cached as empty (policy.go)
	leases  lease.Locker
	pages   content.PageRule
	flights *syncutil.Group[string, *fetched]
	// decoded spares cache hits the JSON decode of bytes decoded before (entry.go).
	decoded *decodedEntries
	// near spares hot keys the shared cache's round trip (nil: off, or the cache is in process).
	near *nodeCache
	// filters bounds the filtered lists asked upstream per subject (filters.go).
	filters *filterBudget
}

// fetched is the outcome of one cache lookup-or-refresh.
type fetched struct {
	entry  *entry // nil when nothing usable is known
	status string // content.CacheHit, CacheMiss or CacheStale
	err    error  // the upstream failure, when status is STALE or entry is nil
}

var _ content.Referrers = (*Controller)(nil)

// New returns a Controller. local serves projects without the toggle; index supplies the local part
// of proxied answers.
func New(local content.Referrers, index LocalIndex, listers Listers, c cache.Cache, m *metrics.Metrics, log *slog.Logger, opts Options) *Controller {
	opts.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Controller{
		local: local, index: index, listers: listers, cache: c, metrics: m, log: log, opts: opts,
		policy:  newPolicy(opts),
		leases:  opts.Leases,
		pages:   content.NewPageRule(opts.PageSize, opts.MaxPageSize),
		flights: syncutil.NewGroup[string, *fetched](opts.UpstreamTimeout),
		decoded: newDecodedEntries(decodedMaxCount, decodedMaxSize),
		near:    nearCacheFor(c, opts),
		filters: newFilterBudget(opts.CacheTTL, opts.Now),
	}
}

// nearCacheFor returns the node cache for a shared cache, nil for an in-process one (nothing to spare).
func nearCacheFor(c cache.Cache, opts Options) *nodeCache {
	if _, inProcess := c.(cache.Viewer); inProcess {
		return nil
	}
	return newNodeCache(opts.NodeCacheTTL, opts.Now)
}

// Coalesced returns how many requests so far joined an upstream refresh another request of this process
// had started instead of starting their own (monotonic; the CoalescedWaiters metric counts the same
// requests once they were answered).
func (c *Controller) Coalesced() uint64 { return c.flights.Coalesced() }

// localDescriptors returns the referrers of subject held in repo, as spec descriptors, and the digests
// among them that were pulled through from the upstream (meta.OriginPulled).
func (c *Controller) localDescriptors(ctx context.Context, repo content.Repo, subject digest.Digest) ([]ocispec.Descriptor, map[digest.Digest]bool, error) {
	arts, err := c.index.ListReferrers(ctx, repo.Name, subject.String(), "")
	if err != nil {
		return nil, nil, err
	}
	out := make([]ocispec.Descriptor, 0, len(arts))
	var pulled map[digest.Digest]bool
	for _, a := range arts {
		out = append(out, ocispec.Descriptor{
			MediaType: a.MediaType, Digest: digest.Digest(a.Digest), Size: a.Size,
			ArtifactType: a.ArtifactType, Annotations: a.Annotations,
		})
		if a.Origin == meta.OriginPulled {
			if pulled == nil {
				pulled = map[digest.Digest]bool{}
			}
			pulled[digest.Digest(a.Digest)] = true
		}
	}
	return out, pulled, nil
}

// dropDeletedUpstream removes from local the referrers that were pulled through from the upstream but
// that the upstream's list no longer names: the upstream deleted them, so once its list is refreshed
// they stop being listed (the manifests stay held until retention removes them). Referrers pushed here,
// or of unknown origin, always stay.
func dropDeletedUpstream(local []ocispec.Descriptor, pulled map[digest.Digest]bool, upstream []ocispec.Descriptor) []ocispec.Descriptor {
	if len(pulled) == 0 {
		return local
	}
	listed := make(map[digest.Digest]bool, len(upstream))
	for _, d := range upstream {
		listed[d.Digest] = true
	}
	out := make([]ocispec.Descriptor, 0, len(local))
	for _, d := range local {
		if pulled[d.Digest] && !listed[d.Digest] {
			continue
		}
		out = append(out, d)
	}
	return out
}

// entry is a decoded cache entry. It is shared between requests (decode memo, node cache) and never
// modified after it is built.
type entry struct {
	storedAt  time.Time
	manifests []ocispec.Descriptor

	index     sync.Once
	indexJSON []byte // the image index of manifests, encoded once on first use (nil: not encodable)
}

// encodedIndex returns the image index of e.manifests, encoded once for every request that serves the
// whole list as it is (nil when the encoder cannot encode it; the handler then does it its own way).
func (e *entry) encodedIndex() []byte {
	e.index.Do(func() {
		if b, ok := ociindex.AppendReferrersIndex(nil, e.manifests); ok {
			e.indexJSON = b
		}
	})
	return e.indexJSON
}

func registryLabel(repo content.Repo) string { return strconv.FormatInt(repo.Project.RegistryID, 10) }
