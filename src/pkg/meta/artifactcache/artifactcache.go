// Package artifactcache keeps recently read manifests records (meta.Artifact by digest) and tag
// resolutions in process memory, so that a manifest GET or HEAD does not query the database each time.
//
// Consistency: writes made through this process's Store (PutArtifact, DeleteTag, DeleteArtifact) drop
// the entries they affect once the write returned, and a read that raced any such write is not cached,
// so a push, a tag moved or deleted and a manifest deleted on this node are visible at once on this node.
// Writes taken by other nodes sharing the database show here within the TTL given to New (2 s in
// `berth serve`, as projects and referrer lists). Misses are not cached: content pushed on another node
// is found at the next request. The pull time of a cached artifact may lag by the TTL (TouchPull does not
// invalidate; pull times are informational).
package artifactcache

import (
	"context"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/syncutil"
)

// Store is a meta.ArtifactStore that caches the GetArtifact and ResolveTag results of the store it
// wraps; every other method passes through. The artifacts it returns are copies the caller may modify.
// Safe for concurrent use. A write method added to meta.ArtifactStore that changes artifacts or tags must
// be overridden here to invalidate.
type Store struct {
	meta.ArtifactStore
	now   func() time.Time
	max   int
	cache *syncutil.ReadCache[key, *meta.Artifact] // artifacts as read, never handed out themselves
}

var _ meta.ArtifactStore = (*Store)(nil)

// key names a cached read: the artifact of a digest, or the one a tag points at.
type key struct {
	repo string
	ref  string // digest or tag
	tag  bool
}

// DefaultMaxEntries bounds the entries held when WithMaxEntries is not given (a few MiB).
const DefaultMaxEntries = 16384

// Option tunes a Store.
type Option func(*Store)

// WithClock sets the clock used for expiry (tests). The default is time.Now.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithMaxEntries bounds the entries held (n > 0). When full, expired entries are dropped, and if that
// frees less than a quarter of the room, every entry is (syncutil.TTLMap).
func WithMaxEntries(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.max = n
		}
	}
}

// New wraps next. Artifacts and tags read are served from memory for ttl; ttl <= 0 disables caching.
func New(next meta.ArtifactStore, ttl time.Duration, opts ...Option) *Store {
	s := &Store{ArtifactStore: next, now: time.Now, max: DefaultMaxEntries}
	for _, o := range opts {
		o(s)
	}
	s.cache = syncutil.NewReadCache[key, *meta.Artifact](s.max, ttl, s.now)
	return s
}

// GetArtifact returns a copy of the cached artifact, or reads it from the wrapped store.
func (s *Store) GetArtifact(ctx context.Context, repo, digest string) (*meta.Artifact, error) {
	return s.read(key{repo: repo, ref: digest}, func() (*meta.Artifact, error) {
		return s.ArtifactStore.GetArtifact(ctx, repo, digest)
	})
}

// ResolveTag returns a copy of the cached artifact the tag points at, or reads it from the wrapped store.
func (s *Store) ResolveTag(ctx context.Context, repo, tag string) (*meta.Artifact, error) {
	return s.read(key{repo: repo, ref: tag, tag: true}, func() (*meta.Artifact, error) {
		return s.ArtifactStore.ResolveTag(ctx, repo, tag)
	})
}

// read returns a copy of the live entry under k, or reads through and caches a found artifact. Errors
// (ErrNotFound included) are not cached.
func (s *Store) read(k key, load func() (*meta.Artifact, error)) (*meta.Artifact, error) {
	a, gen, ok := s.cache.Lookup(k)
	if ok {
		return a.Clone(), nil
	}
	a, err := load()
	if err == nil && a != nil && s.cache.Caching() {
		s.cache.Fill(gen, a.Clone(), k)
	}
	return a, err
}

// PutArtifact records through the wrapped store, then drops the entries of a's digest and of tags.
func (s *Store) PutArtifact(ctx context.Context, projectID int64, repo string, a *meta.Artifact, tags ...string) error {
	digest := a.Digest // a is updated by the write
	err := s.ArtifactStore.PutArtifact(ctx, projectID, repo, a, tags...)
	s.cache.Invalidate(func(k key, _ *meta.Artifact) bool {
		if k.repo != repo {
			return false
		}
		if !k.tag {
			return k.ref == digest
		}
		for _, t := range tags {
			if k.ref == t {
				return true
			}
		}
		return false
	})
	return err
}

// DeleteTag deletes through the wrapped store, then drops the tag's entry.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) error {
	err := s.ArtifactStore.DeleteTag(ctx, repo, tag)
	s.cache.Invalidate(func(k key, _ *meta.Artifact) bool { return k.repo == repo && k.tag && k.ref == tag })
	return err
}

// DeleteArtifact deletes through the wrapped store, then drops the artifact's entry and those of the
// tags that pointed at it.
func (s *Store) DeleteArtifact(ctx context.Context, repo, digest string) error {
	err := s.ArtifactStore.DeleteArtifact(ctx, repo, digest)
	s.cache.Invalidate(func(k key, a *meta.Artifact) bool { return k.repo == repo && a.Digest == digest })
	return err
}
