// Package projectcache keeps recently read projects in process memory, so that the project lookup every
// registry request makes (GetProjectByName) does not reach the database each time.
//
// Consistency: writes made through this process's Store (CreateProject, UpdateProject, DeleteProject)
// empty the cache at once, and a read that raced such a write is not cached. Changes made by other
// processes or nodes sharing the database show here within the TTL given to New. Missing projects are
// not cached: a project created elsewhere is seen at the next request.
package projectcache

import (
	"context"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/syncutil"
)

// Store is a meta.ProjectStore that caches GetProject and GetProjectByName results of the store it
// wraps. Every project it returns is a copy the caller may modify. It is safe for concurrent use.
type Store struct {
	next  meta.ProjectStore
	now   func() time.Time
	cache *syncutil.ReadCache[key, *meta.Project] // projects as read, never handed out themselves
}

var _ meta.ProjectStore = (*Store)(nil)

// key names a cached project by name or by ID (a fill stores it under both).
type key struct {
	name string
	id   int64
	byID bool
}

// Option tunes a Store.
type Option func(*Store)

// WithClock sets the clock used for expiry (tests). The default is time.Now.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// maxEntries bounds the entries (two a project: by name and by ID); when full, expired entries are
// dropped, and if that frees less than a quarter of the room, everything is.
const maxEntries = 8192

// New wraps next. Projects read are served from memory for ttl; ttl <= 0 disables caching.
func New(next meta.ProjectStore, ttl time.Duration, opts ...Option) *Store {
	s := &Store{next: next, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.cache = syncutil.NewReadCache[key, *meta.Project](maxEntries, ttl, s.now)
	return s
}

// GetProjectByName returns a copy of the cached project, or reads it from the wrapped store.
func (s *Store) GetProjectByName(ctx context.Context, name string) (*meta.Project, error) {
	return s.ReadOnly().read(ctx, key{name: name}, (*meta.Project).Clone)
}

// GetProject returns a copy of the cached project, or reads it from the wrapped store.
func (s *Store) GetProject(ctx context.Context, id int64) (*meta.Project, error) {
	return s.ReadOnly().read(ctx, key{id: id, byID: true}, (*meta.Project).Clone)
}

// ReadOnly is a view of a Store for hot read paths (every registry request resolves its project):
// GetProjectByName hands out the cached project itself instead of a copy, so its callers must never
// modify what they get. Caching and invalidation are the Store's.
type ReadOnly struct{ s *Store }

// ReadOnly returns the read-only view of s.
func (s *Store) ReadOnly() ReadOnly { return ReadOnly{s} }

// GetProjectByName returns the cached project (shared: do not modify it), or reads it from the wrapped
// store.
func (v ReadOnly) GetProjectByName(ctx context.Context, name string) (*meta.Project, error) {
	return v.read(ctx, key{name: name}, shared)
}

// read returns out(cached project under k), or reads through and caches a found project under its
// name and ID. Errors (including ErrNotFound) are not cached.
func (v ReadOnly) read(ctx context.Context, k key, out func(*meta.Project) *meta.Project) (*meta.Project, error) {
	s := v.s
	p, gen, ok := s.cache.Lookup(k)
	if ok {
		return out(p), nil
	}
	var err error
	if k.byID {
		p, err = s.next.GetProject(ctx, k.id)
	} else {
		p, err = s.next.GetProjectByName(ctx, k.name)
	}
	if err == nil && p != nil && s.cache.Caching() {
		s.cache.Fill(gen, p.Clone(), key{name: p.Name}, key{id: p.ID, byID: true})
	}
	return p, err
}

// invalidate empties the cache and stops reads in flight from filling it. Writes are rare, so
// dropping everything is simpler than tracking which name an ID had.
func (s *Store) invalidate() { s.cache.Invalidate(nil) }

// CreateProject creates through the wrapped store and empties the cache.
func (s *Store) CreateProject(ctx context.Context, p *meta.Project) (int64, error) {
	defer s.invalidate()
	return s.next.CreateProject(ctx, p)
}

// UpdateProject updates through the wrapped store and empties the cache.
func (s *Store) UpdateProject(ctx context.Context, p *meta.Project) error {
	defer s.invalidate()
	return s.next.UpdateProject(ctx, p)
}

// DeleteProject deletes through the wrapped store and empties the cache.
func (s *Store) DeleteProject(ctx context.Context, id int64) error {
	defer s.invalidate()
	return s.next.DeleteProject(ctx, id)
}

// ListProjects is not cached.
func (s *Store) ListProjects(ctx context.Context, name string, offset, limit int) ([]*meta.Project, int64, error) {
	return s.next.ListProjects(ctx, name, offset, limit)
}

// shared hands out the cached project itself (ReadOnly).
func shared(p *meta.Project) *meta.Project { return p }
