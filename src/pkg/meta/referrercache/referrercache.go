// Package referrercache keeps recently listed referrers in process memory, so that a referrers request
// (every `cosign verify`, `notation verify` and `oras discover` makes several) does not query the
// database each time.
//
// Consistency: writes made through this process's Store (PutArtifact of a manifest with a subject,
// DeleteArtifact) drop the affected lists at once, and a read that raced such a write is not cached, so
// a push is visible at once on the node that took it. Pushes taken by other nodes sharing the database
// show here within the TTL given to New, as project changes do (package projectcache). Lists that failed
// are not cached; empty lists are (they are the common answer for unsigned content).
//
// Memory: the cache is bounded in lists, artifacts and list length, and its keys come from clients, so
// they are bounded too: a repository or subject longer than maxKeyPart, or an artifactType longer than
// meta.MaxArtifactTypeLength, is read through without being cached, and every key part stored is a
// copy (strings.Clone), never a slice of the request that carried it (which would pin the whole request
// line in memory for as long as the entry lives).
package referrercache

import (
	"context"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// Store is a meta.ArtifactStore that caches the ListReferrers results of the store it wraps; every other
// method passes through. The artifacts it returns are copies the caller may modify. Safe for concurrent
// use. A write method added to meta.ArtifactStore that changes the referrer index must be overridden here
// to invalidate.
type Store struct {
	meta.ArtifactStore
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	lists map[key]cached
	held  int // artifacts held in lists
	// gen counts invalidations; a read stores its result only when gen did not move while it ran.
	gen uint64
}

var _ meta.ArtifactStore = (*Store)(nil)

type key struct{ repo, subject, artifactType string }

type cached struct {
	arts    []*meta.Artifact
	expires time.Time
}

// Bounds: lists held, artifacts held over all lists, and the longest list cached (longer lists are
// read from the database every time; they are rare and the read dominates their cost anyway).
const (
	maxLists     = 4096
	maxArtifacts = 64 << 10
	maxListLen   = 1024
	// maxKeyPart bounds a repository name or a subject digest in a key (repository names are at most
	// 255 bytes, sha512 digests 135).
	maxKeyPart = 255
)

// Option tunes a Store.
type Option func(*Store)

// WithClock sets the clock used for expiry (tests). The default is time.Now.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New wraps next. Referrer lists read are served from memory for ttl; ttl <= 0 disables caching.
func New(next meta.ArtifactStore, ttl time.Duration, opts ...Option) *Store {
	s := &Store{ArtifactStore: next, ttl: ttl, now: time.Now, lists: map[key]cached{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ListReferrers returns copies of the cached list, or reads it from the wrapped store.
func (s *Store) ListReferrers(ctx context.Context, repo, subject, artifactType string) ([]*meta.Artifact, error) {
	k := key{repo, subject, artifactType}
	s.mu.Lock()
	c, ok := s.lists[k]
	gen := s.gen
	s.mu.Unlock()
	if ok && s.now().Before(c.expires) {
		return cloneAll(c.arts), nil
	}
	arts, err := s.ArtifactStore.ListReferrers(ctx, repo, subject, artifactType)
	if err != nil || s.ttl <= 0 || len(arts) > maxListLen || !cacheable(k) {
		return arts, err
	}
	k = key{strings.Clone(repo), strings.Clone(subject), strings.Clone(artifactType)}
	c = cached{arts: cloneAll(arts), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	if s.gen == gen {
		s.makeRoom(len(arts))
		if old, ok := s.lists[k]; ok {
			s.held -= len(old.arts)
		}
		s.lists[k] = c
		s.held += len(c.arts)
	}
	s.mu.Unlock()
	return arts, nil
}

// cacheable reports whether k is small enough to be kept.
func cacheable(k key) bool {
	return len(k.repo) <= maxKeyPart && len(k.subject) <= maxKeyPart && len(k.artifactType) <= meta.MaxArtifactTypeLength
}

// PutArtifact records through the wrapped store, then drops the cached lists of a's subject.
func (s *Store) PutArtifact(ctx context.Context, projectID int64, repo string, a *meta.Artifact, tags ...string) error {
	err := s.ArtifactStore.PutArtifact(ctx, projectID, repo, a, tags...)
	if a.Subject != "" {
		s.invalidate(func(k key) bool { return k.repo == repo && k.subject == a.Subject })
	}
	return err
}

// DeleteArtifact deletes through the wrapped store, then drops every cached list of repo (the deleted
// artifact's subject is not known here; deletes are rare).
func (s *Store) DeleteArtifact(ctx context.Context, repo, digest string) error {
	err := s.ArtifactStore.DeleteArtifact(ctx, repo, digest)
	s.invalidate(func(k key) bool { return k.repo == repo })
	return err
}

// invalidate drops the lists match selects and stops reads in flight from filling the cache. It runs
// after the write whatever its outcome: a failed write may still have committed.
func (s *Store) invalidate(match func(key) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	for k, c := range s.lists {
		if match(k) {
			s.held -= len(c.arts)
			delete(s.lists, k)
		}
	}
}

// makeRoom keeps the cache within its bounds before n more artifacts are added. Called with mu held.
func (s *Store) makeRoom(n int) {
	if len(s.lists) < maxLists && s.held+n <= maxArtifacts {
		return
	}
	t := s.now()
	for k, c := range s.lists {
		if !t.Before(c.expires) {
			s.held -= len(c.arts)
			delete(s.lists, k)
		}
	}
	if len(s.lists) >= maxLists || s.held+n > maxArtifacts {
		clear(s.lists)
		s.held = 0
	}
}

func cloneAll(arts []*meta.Artifact) []*meta.Artifact {
	out := make([]*meta.Artifact, len(arts))
	for i, a := range arts {
		c := *a
		c.Annotations = maps.Clone(a.Annotations)
		out[i] = &c
	}
	return out
}
