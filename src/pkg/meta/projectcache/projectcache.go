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
	"maps"
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// Store is a meta.ProjectStore that caches GetProject and GetProjectByName results of the store it
// wraps. Every project it returns is a copy the caller may modify. It is safe for concurrent use.
type Store struct {
	next meta.ProjectStore
	ttl  time.Duration
	now  func() time.Time

	mu     sync.Mutex
	byName map[string]cached
	byID   map[int64]cached
	// gen counts invalidations; a read stores its result only when gen did not move while it ran.
	gen uint64
}

var _ meta.ProjectStore = (*Store)(nil)

// cached is a project as read from the wrapped store, never handed out itself.
type cached struct {
	p       *meta.Project
	expires time.Time
}

// Option tunes a Store.
type Option func(*Store)

// WithClock sets the clock used for expiry (tests). The default is time.Now.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// maxEntries bounds each map; when full, expired entries are dropped, and if none are, everything is.
const maxEntries = 4096

// New wraps next. Projects read are served from memory for ttl; ttl <= 0 disables caching.
func New(next meta.ProjectStore, ttl time.Duration, opts ...Option) *Store {
	s := &Store{next: next, ttl: ttl, now: time.Now, byName: map[string]cached{}, byID: map[int64]cached{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// GetProjectByName returns a copy of the cached project, or reads it from the wrapped store.
func (s *Store) GetProjectByName(ctx context.Context, name string) (*meta.Project, error) {
	p, gen, ok := s.lookup(func() (cached, bool) { c, ok := s.byName[name]; return c, ok })
	if ok {
		return p, nil
	}
	return s.fill(gen, func() (*meta.Project, error) { return s.next.GetProjectByName(ctx, name) })
}

// GetProject returns a copy of the cached project, or reads it from the wrapped store.
func (s *Store) GetProject(ctx context.Context, id int64) (*meta.Project, error) {
	p, gen, ok := s.lookup(func() (cached, bool) { c, ok := s.byID[id]; return c, ok })
	if ok {
		return p, nil
	}
	return s.fill(gen, func() (*meta.Project, error) { return s.next.GetProject(ctx, id) })
}

// lookup returns a copy of a live entry, or the generation a fill must match.
func (s *Store) lookup(get func() (cached, bool)) (*meta.Project, uint64, bool) {
	p, gen, ok := s.lookupShared(get)
	if ok {
		p = clone(p)
	}
	return p, gen, ok
}

// lookupShared is lookup without the copy.
func (s *Store) lookupShared(get func() (cached, bool)) (*meta.Project, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := get()
	if ok && s.now().Before(c.expires) {
		return c.p, s.gen, true
	}
	return nil, s.gen, false
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
	s := v.s
	p, gen, ok := s.lookupShared(func() (cached, bool) { c, ok := s.byName[name]; return c, ok })
	if ok {
		return p, nil
	}
	return s.fill(gen, func() (*meta.Project, error) { return s.next.GetProjectByName(ctx, name) })
}

// fill reads through and caches a found project under its name and ID, unless an invalidation
// happened since gen was taken. Errors (including ErrNotFound) are not cached.
func (s *Store) fill(gen uint64, read func() (*meta.Project, error)) (*meta.Project, error) {
	p, err := read()
	if err != nil || p == nil || s.ttl <= 0 {
		return p, err
	}
	c := cached{p: clone(p), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	if s.gen == gen {
		s.makeRoom()
		s.byName[c.p.Name] = c
		s.byID[c.p.ID] = c
	}
	s.mu.Unlock()
	return p, nil
}

// makeRoom keeps the maps bounded. Called with mu held.
func (s *Store) makeRoom() {
	if len(s.byName) < maxEntries && len(s.byID) < maxEntries {
		return
	}
	t := s.now()
	maps.DeleteFunc(s.byName, func(_ string, c cached) bool { return !t.Before(c.expires) })
	maps.DeleteFunc(s.byID, func(_ int64, c cached) bool { return !t.Before(c.expires) })
	if len(s.byName) >= maxEntries || len(s.byID) >= maxEntries {
		clear(s.byName)
		clear(s.byID)
	}
}

// invalidate empties the cache and stops reads in flight from filling it. Writes are rare, so
// dropping everything is simpler than tracking which name an ID had.
func (s *Store) invalidate() {
	s.mu.Lock()
	s.gen++
	clear(s.byName)
	clear(s.byID)
	s.mu.Unlock()
}

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

// clone copies p and its Metadata map.
func clone(p *meta.Project) *meta.Project {
	c := *p
	c.Metadata = maps.Clone(p.Metadata)
	return &c
}
