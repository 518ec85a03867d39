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

func projectName(p *meta.Project) string          { return p.Name }
func registryName(r *meta.Registry) string        { return r.Name }
func copyRegistry(r meta.Registry) *meta.Registry { return &r }

// createRow stores a copy of v under the next ID, unless a row of rows has its name.
func createRow[T any](f *fakeStore, rows map[int64]T, v *T, name func(*T) string, stamp func(*T, int64), dup func(T) *T) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range rows {
		if name(&q) == name(v) {
			return 0, meta.ErrConflict
		}
	}
	f.nextID++
	stamp(v, f.nextID)
	rows[f.nextID] = *dup(*v)
	return f.nextID, nil
}

// getRow returns a copy of the row id.
func getRow[T any](f *fakeStore, rows map[int64]T, id int64, dup func(T) *T) (*T, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := rows[id]
	if !ok {
		return nil, meta.ErrNotFound
	}
	return dup(v), nil
}

// updateRow applies change (called with f.mu held) to a copy of the row id and stores it:
// meta.ErrNotFound when there is no such row, change's error (nothing stored) when it fails.
func updateRow[T any](f *fakeStore, rows map[int64]T, id int64, change func(old *T) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := rows[id]
	if !ok {
		return meta.ErrNotFound
	}
	if err := change(&v); err != nil {
		return err
	}
	rows[id] = v
	return nil
}

// deleteRow removes the row id: meta.ErrNotFound when there is none, meta.ErrConflict when inUse
// (called with f.mu held) reports that something still refers to it.
func deleteRow[T any](f *fakeStore, rows map[int64]T, id int64, inUse func() bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := rows[id]; !ok {
		return meta.ErrNotFound
	}
	if inUse() {
		return meta.ErrConflict
	}
	delete(rows, id)
	return nil
}

// listRows returns copies of the rows whose name contains name, sorted by name, and their count; f.mu is held.
func listRows[T any](rows map[int64]T, name string, offset, limit int, nameOf func(*T) string, dup func(T) *T) ([]*T, int64, error) {
	var all []*T
	for _, v := range rows {
		if strings.Contains(nameOf(&v), name) {
			all = append(all, dup(v))
		}
	}
	slices.SortFunc(all, func(a, b *T) int { return cmp.Compare(nameOf(a), nameOf(b)) })
	return window(all, offset, limit), int64(len(all)), nil
}

func (f *fakeStore) CreateProject(_ context.Context, p *meta.Project) (int64, error) {
	return createRow(f, f.projects, p, projectName, func(p *meta.Project, id int64) {
		p.ID, p.CreationTime, p.UpdateTime = id, time.Now(), time.Now()
	}, copyProject)
}

func (f *fakeStore) GetProject(_ context.Context, id int64) (*meta.Project, error) {
	return getRow(f, f.projects, id, copyProject)
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
	return listRows(f.projects, name, offset, limit, projectName, copyProject)
}

func (f *fakeStore) UpdateProject(_ context.Context, p *meta.Project) error {
	return updateRow(f, f.projects, p.ID, func(old *meta.Project) error {
		old.Metadata, old.RegistryID, old.StorageLimit, old.UpdateTime = maps.Clone(p.Metadata), p.RegistryID, p.StorageLimit, time.Now()
		return nil
	})
}

func (f *fakeStore) DeleteProject(_ context.Context, id int64) error {
	return deleteRow(f, f.projects, id, func() bool { return f.repos[id] > 0 })
}

func (f *fakeStore) CountRepositories(_ context.Context, projectID int64) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.repos[projectID], nil
}

func (f *fakeStore) GetRegistry(_ context.Context, id int64) (*meta.Registry, error) {
	return getRow(f, f.registries, id, copyRegistry)
}

func (f *fakeStore) ListRegistries(_ context.Context, name string, offset, limit int) ([]*meta.Registry, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return listRows(f.registries, name, offset, limit, registryName, copyRegistry)
}

func (f *fakeStore) CreateRegistry(_ context.Context, r *meta.Registry) (int64, error) {
	return createRow(f, f.registries, r, registryName, func(r *meta.Registry, id int64) {
		r.ID, r.CreationTime, r.UpdateTime = id, time.Now(), time.Now()
	}, copyRegistry)
}

func (f *fakeStore) UpdateRegistry(_ context.Context, r *meta.Registry) error {
	return updateRow(f, f.registries, r.ID, func(old *meta.Registry) error {
		for _, q := range f.registries {
			if q.Name == r.Name && q.ID != r.ID {
				return meta.ErrConflict
			}
		}
		*old = *r
		old.UpdateTime = time.Now()
		return nil
	})
}

func (f *fakeStore) DeleteRegistry(_ context.Context, id int64) error {
	return deleteRow(f, f.registries, id, func() bool {
		for _, p := range f.projects {
			if p.RegistryID == id {
				return true
			}
		}
		return false
	})
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
