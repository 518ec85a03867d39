// Package proxy implements pull-through for proxy-cache projects: a content.Service that wraps the
// registry's local one and, for projects with an upstream registry, fills local storage from the upstream
// on demand. Non-proxy projects pass straight through to the local service.
//
// Manifests by digest are served locally when held; by tag, one upstream HEAD decides whether the local
// copy is current, at most once per tag freshness window and once at a time however many clients ask.
// Blobs are downloaded once per digest however many clients ask, streamed to every waiting client from
// the growing temporary file, and committed only after their digest is verified; a HEAD of a blob not
// held asks the upstream with a HEAD and downloads nothing. An upstream "not found" is remembered for
// a short time (memo.go), so repeated misses cost one upstream request. With Options.Leases (several
// nodes on one Redis) a blob is downloaded by one node at a time across all of them; the others wait for
// it to be stored and serve it from there (fillshare.go).
package proxy

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/lease"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/storage"
	"github.com/berth-registry/berth/src/pkg/syncutil"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// Upstream is the part of the upstream registry client the proxy uses. Repository names are the
// project-relative paths; the client maps them to upstream names (Docker Hub's library/).
type Upstream interface {
	ManifestExists(ctx context.Context, repo, ref string) (upstream.Descriptor, error)
	GetManifest(ctx context.Context, repo, ref string) (*upstream.Manifest, error)
	GetBlob(ctx context.Context, repo string, d digest.Digest, offset int64) (io.ReadCloser, int64, error)
	// StatBlob asks with HEAD for a blob's size (-1: not announced), downloading nothing.
	StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error)
	ListTags(ctx context.Context, repo string) ([]string, error)
}

// Upstreams returns the upstream client of a proxy-cache project.
type Upstreams interface {
	Upstream(ctx context.Context, project *meta.Project) (Upstream, error)
}

// Local is what the proxy needs of the local service: the content.Service itself, and a way to record a
// manifest fetched from the upstream without requiring its blobs to be held locally.
type Local interface {
	content.Service
	// RecordManifest stores a manifest byte-exact under its digest and, when tag != "", points the tag at it.
	RecordManifest(ctx context.Context, repo content.Repo, tag string, m *content.Manifest) error
	// RecordPull counts a pull of manifest d served without the local GetManifest (a fill), so that a
	// pulled-through manifest has a pull time and its repository a pull count from its first pull.
	RecordPull(ctx context.Context, repo content.Repo, d digest.Digest)
}

// Options tune the proxy.
type Options struct {
	// FillTimeout bounds one upstream blob download, independent of the clients waiting for it.
	FillTimeout time.Duration
	// NegativeCacheTTL is how long an upstream "not found" for a manifest or blob reference is answered
	// without asking the upstream again (config proxy-negative-cache-ttl). 0: not remembered.
	NegativeCacheTTL time.Duration
	// TagFreshness is how long a tag checked with the upstream is served from its local copy without
	// asking again, for projects without metadata proxy_tag_freshness_seconds (config
	// proxy-tag-freshness). 0: every pull of a tag asks the upstream.
	TagFreshness time.Duration
	// Leases, when set (Redis: several nodes), makes a blob fill take the lease "fill:<repo>@<digest>"
	// first, so that one node downloads a blob however many nodes are asked for it (fillshare.go).
	// nil: fills are shared within this process only, which is all a single node needs.
	Leases lease.Locker
	// FillLeaseTTL is how long a fill's lease outlives the last renewal of its node (renewed every third
	// of it while the download runs): a node that dies mid-fill lets another take over after this.
	FillLeaseTTL time.Duration
	// FillPoll is how often a node waiting for another node's fill looks whether the blob is stored.
	FillPoll time.Duration
	// Now is the clock (tests).
	Now func() time.Time
	// Quota makes room in proxy-cache projects with a storage limit by evicting cached content. nil:
	// content that does not fit is served without being stored.
	Quota Quota
	// Pins protects a filled blob from the garbage collector between its commit and its link (nil: no
	// collector runs against this store).
	Pins content.BlobPinner
}

// DefaultFillLeaseTTL is the default of Options.FillLeaseTTL.
const DefaultFillLeaseTTL = 30 * time.Second

// Service is the pull-through content.Service.
type Service struct {
	Local
	upstreams Upstreams
	blobs     storage.BlobWriter
	links     meta.BlobLinkStore
	log       *slog.Logger
	opts      Options
	fills     *fillGroup
	onPull    func(ctx context.Context, repo content.Repo, subject digest.Digest)
	manifests *syncutil.Group[string, *content.Manifest]
	tagChecks *syncutil.Group[string, *content.Manifest] // one upstream check per tag at a time
	blobStats *syncutil.Group[string, int64]             // one upstream blob HEAD per blob at a time
	tagLists  *syncutil.Group[string, []string]          // one upstream tag listing per repository at a time
	memo      *memo
}

var _ content.Service = (*Service)(nil)

// New returns the proxy service over local.
func New(local Local, upstreams Upstreams, blobs storage.BlobWriter, links meta.BlobLinkStore, log *slog.Logger, opts Options) *Service {
	if opts.FillTimeout <= 0 {
		opts.FillTimeout = 30 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FillLeaseTTL <= 0 {
		opts.FillLeaseTTL = DefaultFillLeaseTTL
	}
	if opts.FillPoll <= 0 {
		opts.FillPoll = 50 * time.Millisecond
	}
	return &Service{
		Local: local, upstreams: upstreams, blobs: blobs, links: links, log: log, opts: opts,
		fills:     newFillGroup(),
		manifests: syncutil.NewGroup[string, *content.Manifest](opts.FillTimeout),
		tagChecks: syncutil.NewGroup[string, *content.Manifest](opts.FillTimeout),
		blobStats: syncutil.NewGroup[string, int64](opts.FillTimeout),
		tagLists:  syncutil.NewGroup[string, []string](opts.FillTimeout),
		memo:      newMemo(opts),
	}
}

// OnSubjectPulled registers a hook called (without blocking) after a manifest of a proxy-cache project
// was served by digest or tag; the referrers prefetcher uses it. Call before serving.
func (s *Service) OnSubjectPulled(hook func(ctx context.Context, repo content.Repo, subject digest.Digest)) {
	s.onPull = hook
}

func (s *Service) pulled(ctx context.Context, repo content.Repo, m *content.Manifest) {
	if s.onPull != nil && m != nil {
		s.onPull(ctx, repo, m.Digest)
	}
}
