package main

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-registry/berth/src/pkg/content/local"
	"github.com/berth-registry/berth/src/pkg/gc"
	"github.com/berth-registry/berth/src/pkg/lifecycle"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/artifactcache"
	"github.com/berth-registry/berth/src/pkg/meta/referrercache"
	"github.com/berth-registry/berth/src/pkg/proxy"
	"github.com/berth-registry/berth/src/pkg/quota"
	"github.com/berth-registry/berth/src/pkg/referrers"
	"github.com/berth-registry/berth/src/pkg/retention"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// buildContent builds the content path: the upstream clients, the caching wrappers over the store,
// garbage collection, the local and pull-through services, quotas, referrers and retention.
func (n *node) buildContent(context.Context) error {
	n.buildUpstreams()
	// Every referrers request merges the local referrers of its subject: keep the lists in process
	// briefly, with the same cross-node delay as projects. Every artifact write goes through this wrapper,
	// so this node's pushes are visible at once.
	n.artifacts = referrercache.New(n.store, 2*time.Second)
	// Every manifest GET and HEAD resolves a tag or a digest: keep those in process too, with the same
	// cross-node delay. Every artifact write goes through this wrapper (and then the one above).
	n.manifests = artifactcache.New(n.artifacts, 2*time.Second)
	// Online garbage collection (docs/gc.md): every write about to reference a blob pins it first.
	pins := gc.NewPins(n.store, n.blobs, gc.DefaultPinLease, nil)
	n.gcRunner = gc.NewRunner(n.store, gc.NewCollector(n.store, n.blobs, n.cfg.GCGracePeriod, nil), 0, n.log.With("component", "gc"))
	n.onClose(n.gcRunner.Close)
	var pulls meta.PullStore = n.store
	if !n.cfg.PullTimeTracking {
		pulls = local.NoPullTracking
	}
	n.localSvc = local.New(n.blobs, n.manifests, n.store, local.Options{MaxReferrersPage: n.cfg.ReferrersMaxPageSize,
		ReferrersPageSize: n.cfg.ReferrersPageSize, Logger: n.log, Pulls: pulls, Now: n.h.clock(),
		UploadKey: deriveKey(n.key, "berth upload session binding"), Pins: pins})
	n.onClose(func() { _ = n.localSvc.Close() })
	// Quotas: proxy-cache projects over their storage limit, and the disk above its high watermark, evict
	// cached content through the same caching wrappers the content service reads through.
	// Retention and eviction remove artifacts by one rule (package lifecycle), through the caching
	// wrappers, so this node forgets removed artifacts at once. MakeRoom is serialised per project across
	// the nodes sharing leases (in process only without Redis: a single node).
	remover := lifecycle.NewRemover(n.manifests, n.log.With("component", "lifecycle"))
	evictor, err := quota.NewEvictor(quota.Options{Store: n.store, Blobs: n.blobs, Metrics: n.m, Log: n.log.With("component", "quota"),
		Leases: n.leases, Remover: &quota.MetaRemover{Artifacts: n.store, Links: n.store, Store: n.store, Blobs: n.blobs, Remover: remover}})
	if err != nil {
		return err
	}
	n.evictor = evictor
	n.proxySvc = proxy.New(n.localSvc, proxy.Clients{Pool: n.clients}, n.blobs, n.store, n.log.With("component", "proxy"), proxy.Options{
		FillTimeout: n.cfg.BlobFillTimeout, NegativeCacheTTL: n.cfg.ProxyNegativeCacheTTL, TagFreshness: n.cfg.ProxyTagFreshness,
		Leases: n.fillLeases,
		Quota:  evictor,
		Pins:   pins,
	})
	n.buildReferrers()
	n.retentions = retention.New(retention.Options{Store: n.store, Manifests: n.blobs, Flusher: n.localSvc, Now: n.h.clock(),
		Remover: remover, Log: n.log.With("component", "retention")})
	n.onClose(n.retentions.Close)
	return nil
}

// buildUpstreams builds the upstream client settings and the pool of clients per registry endpoint.
func (n *node) buildUpstreams() {
	cfg := n.cfg
	n.upstreamOpts = upstream.Options{
		DialTimeout:           cfg.UpstreamDialTimeout,
		ResponseHeaderTimeout: cfg.UpstreamHeaderTimeout,
		MaxConnsPerHost:       cfg.UpstreamMaxConns,
		MaxPages:              cfg.ReferrersUpstreamPages,
		ReprobeInterval:       cfg.ReferrersReprobe,
		MaxReferrersBytes:     int64(cfg.UpstreamReferrersMaxBytes),
		MaxReferrersEntries:   cfg.UpstreamReferrersMaxEntries,
		Proxy:                 http.ProxyFromEnvironment,
		Logger:                n.log.With("component", "upstream"),
		UserAgent:             "berth/" + version,
	}
	n.clients = upstream.NewClients(n.store, n.box, n.upstreamOpts)
	n.clients.Instrument(func(id int64, rt http.RoundTripper) http.RoundTripper {
		return n.m.UpstreamTransport(strconv.FormatInt(id, 10), rt)
	})
}

// buildReferrers builds the Proxy Referrer API controller and its prefetcher, fed by subject pulls.
func (n *node) buildReferrers() {
	cfg := n.cfg
	n.refs = referrers.New(n.localSvc, n.artifacts, listers{n.clients}, n.kv, n.m, n.log.With("component", "referrers"), referrers.Options{
		CacheTTL: cfg.ReferrersCacheTTL, Freshness: cfg.ReferrersFreshness,
		PageSize: cfg.ReferrersPageSize, MaxPageSize: cfg.ReferrersMaxPageSize,
		UpstreamTimeout: cfg.UpstreamHeaderTimeout * 2, NodeCacheTTL: cfg.ReferrersNodeCache, Now: n.h.clock(),
		Leases: n.leases,
	})
	prefetch := referrers.NewPrefetcher(n.refs, n.proxySvc, cfg.ReferrersPrefetchWorker, 5*time.Minute, n.m, n.log.With("component", "prefetch"))
	n.onClose(prefetch.Close)
	n.proxySvc.OnSubjectPulled(prefetch.SubjectPulled)
}
