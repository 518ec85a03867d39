package api

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// fakeStore is an in-memory ProjectStore, RegistryStore and RepositoryCounter following the meta
// contracts. It hands out copies, as a database would.
type fakeStore struct {
	mu         sync.Mutex
	nextID     int64
	projects   map[int64]meta.Project
	registries map[int64]meta.Registry
	repos      map[int64]int64 // project ID -> repository count
}

var (
	_ meta.ProjectStore  = (*fakeStore)(nil)
	_ meta.RegistryStore = (*fakeStore)(nil)
	_ RepositoryCounter  = (*fakeStore)(nil)
)

func newFakeStore() *fakeStore {
	return &fakeStore{projects: map[int64]meta.Project{}, registries: map[int64]meta.Registry{}, repos: map[int64]int64{}}
}

func copyProject(p meta.Project) *meta.Project { p.Metadata = maps.Clone(p.Metadata); return &p }

func (f *fakeStore) CreateProject(_ context.Context, p *meta.Project) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.projects {
		if q.Name == p.Name {
			return 0, meta.ErrConflict
		}
	}
	f.nextID++
	p.ID, p.CreationTime, p.UpdateTime = f.nextID, time.Now(), time.Now()
	f.projects[p.ID] = *copyProject(*p)
	return p.ID, nil
}

func (f *fakeStore) GetProject(_ context.Context, id int64) (*meta.Project, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.projects[id]
	if !ok {
		return nil, meta.ErrNotFound
	}
	return copyProject(p), nil
}

func (f *fakeStore) GetProjectByName(_ context.Context, name string) (*meta.Project, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.projects {
		if p.Name == name {
			return copyProject(p), nil
		}
	}
	return nil, meta.ErrNotFound
}

func (f *fakeStore) ListProjects(_ context.Context, name string, offset, limit int) ([]*meta.Project, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []*meta.Project
	for _, p := range f.projects {
		if strings.Contains(p.Name, name) {
			all = append(all, copyProject(p))
		}
	}
	slices.SortFunc(all, func(a, b *meta.Project) int { return cmp.Compare(a.Name, b.Name) })
	return window(all, offset, limit), int64(len(all)), nil
}

func (f *fakeStore) UpdateProject(_ context.Context, p *meta.Project) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.projects[p.ID]
	if !ok {
		return meta.ErrNotFound
	}
	old.Metadata, old.RegistryID, old.StorageLimit, old.UpdateTime = maps.Clone(p.Metadata), p.RegistryID, p.StorageLimit, time.Now()
	f.projects[p.ID] = old
	return nil
}

func (f *fakeStore) DeleteProject(_ context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.projects[id]; !ok {
		return meta.ErrNotFound
	}
	if f.repos[id] > 0 {
		return meta.ErrConflict
	}
	delete(f.projects, id)
	return nil
}

func (f *fakeStore) CountRepositories(_ context.Context, projectID int64) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.repos[projectID], nil
}

func (f *fakeStore) CreateRegistry(_ context.Context, r *meta.Registry) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.registries {
		if q.Name == r.Name {
			return 0, meta.ErrConflict
		}
	}
	f.nextID++
	r.ID, r.CreationTime, r.UpdateTime = f.nextID, time.Now(), time.Now()
	f.registries[r.ID] = *r
	return r.ID, nil
}

func (f *fakeStore) GetRegistry(_ context.Context, id int64) (*meta.Registry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.registries[id]
	if !ok {
		return nil, meta.ErrNotFound
	}
	return &r, nil
}

func (f *fakeStore) ListRegistries(_ context.Context, name string, offset, limit int) ([]*meta.Registry, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []*meta.Registry
	for _, r := range f.registries {
		if strings.Contains(r.Name, name) {
			all = append(all, &r)
		}
	}
	slices.SortFunc(all, func(a, b *meta.Registry) int { return cmp.Compare(a.Name, b.Name) })
	return window(all, offset, limit), int64(len(all)), nil
}

func (f *fakeStore) UpdateRegistry(_ context.Context, r *meta.Registry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.registries[r.ID]; !ok {
		return meta.ErrNotFound
	}
	for _, q := range f.registries {
		if q.Name == r.Name && q.ID != r.ID {
			return meta.ErrConflict
		}
	}
	c := *r
	c.UpdateTime = time.Now()
	f.registries[r.ID] = c
	return nil
}

func (f *fakeStore) DeleteRegistry(_ context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.registries[id]; !ok {
		return meta.ErrNotFound
	}
	for _, p := range f.projects {
		if p.RegistryID == id {
			return meta.ErrConflict
		}
	}
	delete(f.registries, id)
	return nil
}

func window[T any](all []T, offset, limit int) []T {
	start := min(offset, len(all))
	end := len(all)
	if limit > 0 {
		end = min(start+limit, len(all))
	}
	return all[start:end]
}

// fakePinger records every registry it is asked to check and fails for URLs in fail.
type fakePinger struct {
	mu    sync.Mutex
	calls []meta.Registry
	fail  map[string]error
}

func (p *fakePinger) PingRegistry(_ context.Context, r meta.Registry) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, r)
	return p.fail[r.URL]
}

func (p *fakePinger) Calls() []meta.Registry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}
