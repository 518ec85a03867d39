// Package local is the registry's own implementation of content.Service: manifest and blob bytes in a
// storage.Store (content-addressed, shared by every repository), and in package meta the records that give
// them meaning per repository: artifacts (manifests with their media type, artifactType, annotations and
// subject), tags, blob links and the subject -> referrer index.
//
// Manifests are stored byte for byte as pushed and never re-serialised. Blob bytes are never removed here:
// deleting a blob or a manifest removes its link or record in one repository; the bytes stay for other
// repositories until a garbage collector removes unreferenced content.
//
// Every error meant for a client is an *errcode.Error; any other error is an internal failure.
package local

import (
	"context"
	"crypto/rand"
	_ "crypto/sha256" // registers sha256 with go-digest
	_ "crypto/sha512" // registers sha512 with go-digest
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/reference"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// DefaultMaxReferrersPage is the largest referrers page served when Options.MaxReferrersPage is 0.
const DefaultMaxReferrersPage = 1000

// DefaultPullTimeInterval is how often at most the pull time of one artifact is written.
const DefaultPullTimeInterval = time.Minute

// BlobStore is the part of storage.Store the service uses (it never deletes bytes).
type BlobStore interface {
	storage.BlobStatter
	storage.BlobReader
	storage.BlobWriter
	storage.Uploads
}

// Options tune the service. The zero value is usable.
type Options struct {
	// MaxReferrersPage caps the entries of one referrers page and is the page size when the query asks
	// for none (0: DefaultMaxReferrersPage).
	MaxReferrersPage int
	// ReferrersPageSize is the page size when the query asks for none (0 or more than
	// MaxReferrersPage: MaxReferrersPage).
	ReferrersPageSize int
	// PullTimeInterval is the minimum time between two pull-time updates of one artifact
	// (0: DefaultPullTimeInterval; negative: every pull is recorded).
	PullTimeInterval time.Duration
	// MaxPullTimeUpdates bounds the pull-time updates running at once; further pulls in that moment are
	// not recorded (0: 16).
	MaxPullTimeUpdates int
	// Logger receives failures of background pull-time updates (nil: discarded).
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// ManifestCacheBytes bounds the manifest bytes kept in memory to serve reads without opening the
	// stored file (0: DefaultManifestCacheBytes; negative: none kept).
	ManifestCacheBytes int64
	// UploadKey keys the MAC that binds upload session IDs to their repository. Every node serving one
	// storage must use the same key (main derives it from the secret key). nil: a random key, so that
	// sessions end with the process.
	UploadKey []byte
	// Pins protects the blobs an upload commit, a mount or a manifest write is about to reference from
	// the garbage collector (nil: no collector runs against this store).
	Pins content.BlobPinner
}

// Service implements content.Service on a BlobStore and the meta roles. It is safe for concurrent use.
type Service struct {
	blobs     BlobStore
	artifacts meta.ArtifactStore
	links     meta.BlobLinkStore
	maxPage   int
	defPage   int
	now       func() time.Time
	pulls     *pullRecorder
	bodies    *bodyCache
	uploadKey []byte
	pins      content.BlobPinner
}

var _ content.Service = (*Service)(nil)

// New returns a Service. Call Close on shutdown to wait for background pull-time updates.
func New(blobs BlobStore, artifacts meta.ArtifactStore, links meta.BlobLinkStore, opts Options) *Service {
	if opts.MaxReferrersPage <= 0 {
		opts.MaxReferrersPage = DefaultMaxReferrersPage
	}
	if opts.ReferrersPageSize <= 0 || opts.ReferrersPageSize > opts.MaxReferrersPage {
		opts.ReferrersPageSize = opts.MaxReferrersPage
	}
	if opts.PullTimeInterval == 0 {
		opts.PullTimeInterval = DefaultPullTimeInterval
	}
	if opts.MaxPullTimeUpdates <= 0 {
		opts.MaxPullTimeUpdates = 16
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ManifestCacheBytes == 0 {
		opts.ManifestCacheBytes = DefaultManifestCacheBytes
	}
	if len(opts.UploadKey) == 0 {
		opts.UploadKey = make([]byte, 32)
		_, _ = rand.Read(opts.UploadKey) // crypto/rand.Read never fails (Go 1.24+)
	}
	return &Service{
		bodies:    newBodyCache(opts.ManifestCacheBytes),
		uploadKey: slices.Clone(opts.UploadKey),
		pins:      opts.Pins,
		blobs:     blobs,
		artifacts: artifacts,
		links:     links,
		maxPage:   opts.MaxReferrersPage,
		defPage:   opts.ReferrersPageSize,
		now:       opts.Now,
		pulls: &pullRecorder{
			store:    artifacts,
			log:      opts.Logger,
			interval: opts.PullTimeInterval,
			sem:      make(chan struct{}, opts.MaxPullTimeUpdates),
			last:     map[string]time.Time{},
		},
	}
}

// Close stops recording pull times and waits for the updates in flight. The service keeps serving
// everything else.
func (s *Service) Close() error {
	s.pulls.close()
	return nil
}

// parseDigest validates a digest of an algorithm the registry accepts (sha256, sha512).
func parseDigest(v string) (digest.Digest, error) {
	d, err := reference.ParseDigest(v)
	if err != nil {
		return "", errcode.ErrDigestInvalid.WithMessage("%s", err.Error())
	}
	return d, nil
}

// recordError describes a failed write to meta for repo: a project deleted meanwhile is NAME_UNKNOWN, the
// rest internal.
func recordError(repo string, err error, what string) error {
	if errors.Is(err, meta.ErrNotFound) {
		return errcode.ErrNameUnknown.WithMessage("the project of %s does not exist", repo).
			WithDetail(map[string]string{"name": repo})
	}
	return fmt.Errorf("%s in %s: %w", what, repo, err)
}

// pin protects digests from the garbage collector before they are checked, written or linked.
// The caller defers unpin, which must run after the reference is committed.
func (s *Service) pin(ctx context.Context, digests ...digest.Digest) (unpin func(), err error) {
	unpin, err = content.Pin(ctx, s.pins, digests...)
	if err != nil {
		return nil, fmt.Errorf("pinning blobs: %w", err)
	}
	return unpin, nil
}

func isNotFound(err error) bool {
	return errors.Is(err, meta.ErrNotFound) || errors.Is(err, storage.ErrNotFound)
}

// maxPullKeys bounds the memory of the pull-time debounce map; it is cleared when full.
const maxPullKeys = 65536

// pullRecorder writes artifact pull times in the background: at most once per interval per artifact, at
// most cap(sem) at once, never delaying the request that triggers it. It is best effort by design.
type pullRecorder struct {
	store    meta.ArtifactStore
	log      *slog.Logger
	interval time.Duration
	sem      chan struct{}

	mu     sync.Mutex
	last   map[string]time.Time
	closed bool
	wg     sync.WaitGroup
}

// record schedules TouchPull(repo, dgst, t) unless one was scheduled within the interval, the recorder
// is saturated, or it is closed.
func (p *pullRecorder) record(ctx context.Context, repo string, dgst digest.Digest, t time.Time) {
	key := repo + "@" + dgst.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if prev, ok := p.last[key]; ok && p.interval > 0 && t.Sub(prev) < p.interval && !t.Before(prev) {
		return
	}
	select {
	case p.sem <- struct{}{}:
	default:
		return // saturated: skip this one; a later pull records the time
	}
	if len(p.last) >= maxPullKeys {
		clear(p.last)
	}
	p.last[key] = t
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() { <-p.sem }()
		// Detached on purpose: the response must not wait, and a client hanging up still counts as a pull.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := p.store.TouchPull(bctx, repo, dgst.String(), t); err != nil && !errors.Is(err, meta.ErrNotFound) {
			p.log.WarnContext(bctx, "recording pull time failed", "repository", repo, "digest", dgst.String(), "err", err)
		}
	}()
}

func (p *pullRecorder) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
}
