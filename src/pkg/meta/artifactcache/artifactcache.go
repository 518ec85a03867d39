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
	"maps"
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// Store is a meta.ArtifactStore that caches the GetArtifact and ResolveTag results of the store it
// wraps; every other method passes through. The artifacts it returns are copies the caller may modify.
// Safe for concurrent use. A write method added to meta.ArtifactStore that changes artifacts or tags must
// be overridden here to invalidate.
type Store struct {
	meta.ArtifactStore
	ttl time.Duration
	now func() time.Time
	max int

	mu      sync.RWMutex
	entries map[key]entry
	// gen counts invalidations; a read stores its result only when gen did not move while it ran.
	gen uint64
}

var _ meta.ArtifactStore = (*Store)(nil)

// key names a cached read: the artifact of a digest, or the one a tag points at.
type key struct {
	repo string
	ref  string // digest or tag
	tag  bool
}

// entry is an artifact as read from the wrapped store, never handed out itself.
type entry struct {
	a       *meta.Artifact
	expires time.Time
}

// DefaultMaxEntries bounds the entries held when WithMaxEntries is not given (a few MiB).
const DefaultMaxEntries = 16384

// Option tunes a Store.
type Option func(*Store)

// WithClock sets the clock used for expiry (tests). The default is time.Now.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithMaxEntries bounds the entries held (n > 0). When full, expired entries are dropped, then others
// until a quarter of the room is free.
func WithMaxEntries(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.max = n
		}
	}
}

// New wraps next. Artifacts and tags read are served from memory for ttl; ttl <= 0 disables caching.
func New(next meta.ArtifactStore, ttl time.Duration, opts ...Option) *Store {
	s := &Store{ArtifactStore: next, ttl: ttl, now: time.Now, max: DefaultMaxEntries, entries: map[key]entry{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// GetArtifact returns a copy of the cached artifact, or reads it from the wrapped store.
func (s *Store) GetArtifact(ctx context.Context, repo, digest string) (*meta.Artifact, error) {
	k := key{repo: repo, ref: digest}
	a, gen, ok := s.lookup(k)
	if ok {
		return a, nil
	}
	a, err := s.ArtifactStore.GetArtifact(ctx, repo, digest)
	s.fill(k, gen, a, err)
	return a, err
}

// ResolveTag returns a copy of the cached artifact the tag points at, or reads it from the wrapped store.
func (s *Store) ResolveTag(ctx context.Context, repo, tag string) (*meta.Artifact, error) {
	k := key{repo: repo, ref: tag, tag: true}
	a, gen, ok := s.lookup(k)
	if ok {
		return a, nil
	}
	a, err := s.ArtifactStore.ResolveTag(ctx, repo, tag)
	s.fill(k, gen, a, err)
	return a, err
}

// lookup returns a copy of a live entry, or the generation a fill must match.
func (s *Store) lookup(k key) (*meta.Artifact, uint64, bool) {
	s.mu.RLock()
	e, ok := s.entries[k]
	gen := s.gen
	s.mu.RUnlock()
	if ok && s.now().Before(e.expires) {
		return clone(e.a), gen, true
	}
	return nil, gen, false
}

// fill caches a found artifact unless an invalidation happened since gen was taken. Errors (ErrNotFound
// included) are not cached.
func (s *Store) fill(k key, gen uint64, a *meta.Artifact, err error) {
	if err != nil || a == nil || s.ttl <= 0 {
		return
	}
	e := entry{a: clone(a), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	if _, ok := s.entries[k]; !ok {
		s.makeRoom()
	}
	s.entries[k] = e
}

// makeRoom keeps the map within its bound before one entry is added. Called with mu held.
func (s *Store) makeRoom() {
	if len(s.entries) < s.max {
		return
	}
	t := s.now()
	maps.DeleteFunc(s.entries, func(_ key, e entry) bool { return !t.Before(e.expires) })
	for k := range s.entries { // map order: an arbitrary victim set
		if len(s.entries) <= s.max-s.max/4-1 {
			break
		}
		delete(s.entries, k)
	}
}

// invalidate drops the entries match selects and stops reads in flight from filling the cache. It runs
// after the write whatever its outcome: a failed write may still have committed.
func (s *Store) invalidate(match func(key, entry) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	maps.DeleteFunc(s.entries, match)
}

// PutArtifact records through the wrapped store, then drops the entries of a's digest and of tags.
func (s *Store) PutArtifact(ctx context.Context, projectID int64, repo string, a *meta.Artifact, tags ...string) error {
	digest := a.Digest // a is updated by the write
	err := s.ArtifactStore.PutArtifact(ctx, projectID, repo, a, tags...)
	s.invalidate(func(k key, _ entry) bool {
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
	s.invalidate(func(k key, _ entry) bool { return k.repo == repo && k.tag && k.ref == tag })
	return err
}

// DeleteArtifact deletes through the wrapped store, then drops the artifact's entry and those of the
// tags that pointed at it.
func (s *Store) DeleteArtifact(ctx context.Context, repo, digest string) error {
	err := s.ArtifactStore.DeleteArtifact(ctx, repo, digest)
	s.invalidate(func(k key, e entry) bool { return k.repo == repo && e.a.Digest == digest })
	return err
}

// clone copies a and its Annotations map.
func clone(a *meta.Artifact) *meta.Artifact {
	c := *a
	c.Annotations = maps.Clone(a.Annotations)
	return &c
}
