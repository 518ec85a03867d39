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
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/quota"
	"github.com/berth-registry/berth/src/pkg/reference"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// BlobStore is the part of storage.Store the service uses (it never deletes bytes).
type BlobStore interface {
	storage.BlobStatter
	storage.BlobReader
	storage.BlobWriter
	storage.Uploads
}

// Options tune the service. The zero value is usable.
type Options struct {
	// MaxReferrersPage and ReferrersPageSize are the largest referrers page and the page size when the
	// query asks for none, as content.NewPageRule takes them (0: its defaults).
	MaxReferrersPage  int
	ReferrersPageSize int
	// Pulls receives the pull times and counts in batches (nil: ArtifactStore.TouchPull per artifact,
	// without counts).
	Pulls meta.PullStore
	// PullFlushInterval is how often gathered pulls are written (0: DefaultPullFlushInterval); it
	// bounds what a crash loses.
	PullFlushInterval time.Duration
	// MaxPendingPulls is the number of distinct artifacts gathered before a flush starts early
	// (0: DefaultMaxPendingPulls).
	MaxPendingPulls int
	// Logger receives failures of background pull-time writes (nil: discarded).
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
	pages     content.PageRule
	now       func() time.Time
	pulls     *pullBatcher
	bodies    *bodyCache
	uploadKey []byte
	pins      content.BlobPinner
}

var _ content.Service = (*Service)(nil)

// New returns a Service. Call Close on shutdown to write the pull times gathered since the last flush.
func New(blobs BlobStore, artifacts meta.ArtifactStore, links meta.BlobLinkStore, opts Options) *Service {
	if opts.PullFlushInterval <= 0 {
		opts.PullFlushInterval = DefaultPullFlushInterval
	}
	if opts.MaxPendingPulls <= 0 {
		opts.MaxPendingPulls = DefaultMaxPendingPulls
	}
	if opts.Pulls == nil {
		opts.Pulls = touchEach{artifacts}
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
		pages:     content.NewPageRule(opts.ReferrersPageSize, opts.MaxReferrersPage),
		now:       opts.Now,
		pulls:     newPullBatcher(opts.Pulls, opts.Logger, opts.PullFlushInterval, opts.MaxPendingPulls),
	}
}

// Close stops recording pull times and writes those gathered (within 30 seconds). The service keeps
// serving everything else.
func (s *Service) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.pulls.close(ctx)
}

// FlushPulls writes the pull times and counts gathered so far (retention calls it before it reads
// them, so that this node's recent pulls count).
func (s *Service) FlushPulls(ctx context.Context) error { return s.pulls.flush(ctx) }

// RecordPull counts a pull of the manifest d in repo, served without GetManifest (a pull-through fill
// the proxy served from the upstream's answer).
func (s *Service) RecordPull(ctx context.Context, repo content.Repo, d digest.Digest) {
	s.pulls.record(repo.Name, d, s.now(), content.PullKindOf(ctx))
}

// parseDigest validates a digest of an algorithm the registry accepts (sha256, sha512).
func parseDigest(v string) (digest.Digest, error) {
	d, err := reference.ParseDigest(v)
	if err != nil {
		return "", errcode.ErrDigestInvalid.WithMessage("%s", err.Error())
	}
	return d, nil
}

// recordError describes a failed write to meta for repo: a project deleted meanwhile is NAME_UNKNOWN, a
// write over the project's storage limit Harbor's DENIED (wrapping the *meta.QuotaError), the rest
// internal.
func recordError(repo string, err error, what string) error {
	if qe, ok := errors.AsType[*meta.QuotaError](err); ok {
		return quota.Denied(qe)
	}
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
