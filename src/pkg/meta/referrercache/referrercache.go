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
	"strings"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/syncutil"
)

// Store is a meta.ArtifactStore that caches the ListReferrers results of the store it wraps; every other
// method passes through. The artifacts it returns are copies the caller may modify. Safe for concurrent
// use. A write method added to meta.ArtifactStore that changes the referrer index must be overridden here
// to invalidate.
type Store struct {
	meta.ArtifactStore
	now   func() time.Time
	lists *syncutil.ReadCache[key, []*meta.Artifact] // lists as read, never handed out themselves
}

var _ meta.ArtifactStore = (*Store)(nil)

type key struct{ repo, subject, artifactType string }

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
	s := &Store{ArtifactStore: next, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.lists = syncutil.NewReadCache[key, []*meta.Artifact](maxLists, ttl, s.now)
	s.lists.Map().Weighted(maxArtifacts, func(arts []*meta.Artifact) int { return len(arts) })
	return s
}

// ListReferrers returns copies of the cached list, or reads it from the wrapped store.
func (s *Store) ListReferrers(ctx context.Context, repo, subject, artifactType string) ([]*meta.Artifact, error) {
	k := key{repo, subject, artifactType}
	arts, gen, ok := s.lists.Lookup(k)
	if ok {
		return cloneAll(arts), nil
	}
	arts, err := s.ArtifactStore.ListReferrers(ctx, repo, subject, artifactType)
	if err != nil || !s.lists.Caching() || len(arts) > maxListLen || !cacheable(k) {
		return arts, err
	}
	k = key{strings.Clone(repo), strings.Clone(subject), strings.Clone(artifactType)}
	s.lists.Fill(gen, cloneAll(arts), k)
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
		s.lists.Invalidate(func(k key, _ []*meta.Artifact) bool { return k.repo == repo && k.subject == a.Subject })
	}
	return err
}

// DeleteArtifact deletes through the wrapped store, then drops every cached list of repo (the deleted
// artifact's subject is not known here; deletes are rare).
func (s *Store) DeleteArtifact(ctx context.Context, repo, digest string) error {
	err := s.ArtifactStore.DeleteArtifact(ctx, repo, digest)
	s.lists.Invalidate(func(k key, _ []*meta.Artifact) bool { return k.repo == repo })
	return err
}

// cloneAll copies every artifact of arts (Artifact.Clone).
func cloneAll(arts []*meta.Artifact) []*meta.Artifact {
	out := make([]*meta.Artifact, len(arts))
	for i, a := range arts {
		out[i] = a.Clone()
	}
	return out
}
