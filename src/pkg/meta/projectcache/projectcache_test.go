package projectcache_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/clocktest"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/metatest"
	"github.com/berth-registry/berth/src/pkg/meta/projectcache"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore/sqltest"
)

// fakeStore is an in-memory meta.ProjectStore that counts reads. beforeReturn, when set, runs inside
// a read after the row was copied and before it is returned (to race writes against reads).
type fakeStore struct {
	mu           sync.Mutex
	projects     map[int64]*meta.Project
	nextID       int64
	reads        int
	beforeReturn func()
}

var _ meta.ProjectStore = (*fakeStore)(nil)

func newFake() *fakeStore { return &fakeStore{projects: map[int64]*meta.Project{}} }

func (f *fakeStore) Reads() int { f.mu.Lock(); defer f.mu.Unlock(); return f.reads }

func (f *fakeStore) CreateProject(_ context.Context, p *meta.Project) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.projects {
		if q.Name == p.Name {
			return 0, meta.ErrConflict
		}
	}
	f.nextID++
	p.ID = f.nextID
	c := *p
	f.projects[p.ID] = &c
	return p.ID, nil
}

func (f *fakeStore) get(match func(*meta.Project) bool) (*meta.Project, error) {
	f.mu.Lock()
	f.reads++
	var out *meta.Project
	for _, p := range f.projects {
		if match(p) {
			c := *p
			c.Metadata = map[string]string{}
			for k, v := range p.Metadata {
				c.Metadata[k] = v
			}
			out = &c
		}
	}
	hook := f.beforeReturn
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	if out == nil {
		return nil, fmt.Errorf("fake: %w", meta.ErrNotFound)
	}
	return out, nil
}

func (f *fakeStore) GetProject(_ context.Context, id int64) (*meta.Project, error) {
	return f.get(func(p *meta.Project) bool { return p.ID == id })
}

func (f *fakeStore) GetProjectByName(_ context.Context, name string) (*meta.Project, error) {
	return f.get(func(p *meta.Project) bool { return p.Name == name })
}

func (f *fakeStore) ListProjects(context.Context, string, int, int) ([]*meta.Project, int64, error) {
	return nil, 0, nil
}

func (f *fakeStore) UpdateProject(_ context.Context, p *meta.Project) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	q, ok := f.projects[p.ID]
	if !ok {
		return meta.ErrNotFound
	}
	q.Metadata, q.RegistryID, q.StorageLimit = p.Metadata, p.RegistryID, p.StorageLimit
	return nil
}

func (f *fakeStore) DeleteProject(_ context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.projects, id)
	return nil
}

func newClock() *clocktest.Clock { return clocktest.New(time.Unix(1_700_000_000, 0)) }

const ttl = 2 * time.Second

func TestCache(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		ttl  time.Duration
		// run acts on the cache and returns the reads the wrapped store should have seen.
		run func(t *testing.T, c *projectcache.Store, f *fakeStore, clk *clocktest.Clock) int
	}{
		{"repeated by-name reads hit", ttl, func(t *testing.T, c *projectcache.Store, _ *fakeStore, _ *clocktest.Clock) int {
			for range 3 {
				p := getByName(t, c, "library")
				require.Equal(t, "true", p.Metadata[meta.MetaPublic])
			}
			return 1
		}},
		{"read-only view shares the cached project and sees updates at once", ttl, func(t *testing.T, c *projectcache.Store, _ *fakeStore, _ *clocktest.Clock) int {
			ro := c.ReadOnly()
			_, err := ro.GetProjectByName(ctx, "library") // fills the cache
			require.NoError(t, err)
			p1, err := ro.GetProjectByName(ctx, "library")
			require.NoError(t, err)
			p2, err := ro.GetProjectByName(ctx, "library")
			require.NoError(t, err)
			require.Same(t, p1, p2, "no copy per read")
			own := getByName(t, c, "library")
			require.NotSame(t, p2, own, "the copying view still copies")
			own.Metadata[meta.MetaPublic] = "false"
			require.NoError(t, c.UpdateProject(ctx, own))
			p3, err := ro.GetProjectByName(ctx, "library")
			require.NoError(t, err)
			require.Equal(t, "false", p3.Metadata[meta.MetaPublic])
			require.Equal(t, "true", p1.Metadata[meta.MetaPublic], "a project handed out is never changed in place")
			return 2
		}},
		{"by-name read fills by-ID", ttl, func(t *testing.T, c *projectcache.Store, _ *fakeStore, _ *clocktest.Clock) int {
			p := getByName(t, c, "library")
			q, err := c.GetProject(ctx, p.ID)
			require.NoError(t, err)
			require.Equal(t, p, q)
			return 1
		}},
		{"expires after ttl", ttl, func(t *testing.T, c *projectcache.Store, _ *fakeStore, clk *clocktest.Clock) int {
			getByName(t, c, "library")
			clk.Advance(ttl - time.Millisecond)
			getByName(t, c, "library")
			clk.Advance(time.Millisecond)
			getByName(t, c, "library")
			return 2
		}},
		{"returns copies", ttl, func(t *testing.T, c *projectcache.Store, _ *fakeStore, _ *clocktest.Clock) int {
			p := getByName(t, c, "library")
			p.Metadata[meta.MetaPublic] = "false"
			p.Name = "changed"
			q := getByName(t, c, "library")
			require.Equal(t, "true", q.Metadata[meta.MetaPublic])
			require.Equal(t, "library", q.Name)
			q.Metadata["x"] = "y"
			r := getByName(t, c, "library")
			require.NotContains(t, r.Metadata, "x")
			return 1
		}},
		{"not found is not cached", ttl, func(t *testing.T, c *projectcache.Store, _ *fakeStore, _ *clocktest.Clock) int {
			for range 2 {
				_, err := c.GetProjectByName(ctx, "missing")
				require.ErrorIs(t, err, meta.ErrNotFound)
			}
			_, err := c.GetProjectByName(ctx, "other")
			require.ErrorIs(t, err, meta.ErrNotFound)
			_, err = c.CreateProject(ctx, &meta.Project{Name: "other"})
			require.NoError(t, err)
			getByName(t, c, "other")
			return 4
		}},
		{"update invalidates", ttl, func(t *testing.T, c *projectcache.Store, _ *fakeStore, _ *clocktest.Clock) int {
			p := getByName(t, c, "library")
			p.Metadata[meta.MetaPublic] = "false"
			require.NoError(t, c.UpdateProject(ctx, p))
			q, err := c.GetProject(ctx, p.ID)
			require.NoError(t, err)
			require.Equal(t, "false", q.Metadata[meta.MetaPublic])
			return 2
		}},
		{"delete invalidates", ttl, func(t *testing.T, c *projectcache.Store, _ *fakeStore, _ *clocktest.Clock) int {
			p := getByName(t, c, "library")
			require.NoError(t, c.DeleteProject(ctx, p.ID))
			_, err := c.GetProjectByName(ctx, "library")
			require.ErrorIs(t, err, meta.ErrNotFound)
			return 2
		}},
		{"create invalidates", ttl, func(t *testing.T, c *projectcache.Store, _ *fakeStore, _ *clocktest.Clock) int {
			getByName(t, c, "library")
			_, err := c.CreateProject(ctx, &meta.Project{Name: "new"})
			require.NoError(t, err)
			getByName(t, c, "library")
			return 2
		}},
		{"ttl zero disables", 0, func(t *testing.T, c *projectcache.Store, _ *fakeStore, _ *clocktest.Clock) int {
			for range 3 {
				getByName(t, c, "library")
			}
			return 3
		}},
		{"read racing an update is not cached", ttl, func(t *testing.T, c *projectcache.Store, f *fakeStore, _ *clocktest.Clock) int {
			once := sync.Once{}
			f.mu.Lock()
			f.beforeReturn = func() {
				once.Do(func() {
					require.NoError(t, c.UpdateProject(ctx, &meta.Project{ID: 1, Metadata: map[string]string{meta.MetaPublic: "false"}}))
				})
			}
			f.mu.Unlock()
			p := getByName(t, c, "library")
			require.Equal(t, "true", p.Metadata[meta.MetaPublic]) // read before the update landed
			q := getByName(t, c, "library")
			require.Equal(t, "false", q.Metadata[meta.MetaPublic])
			return 2
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, clk := newFake(), newClock()
			_, err := f.CreateProject(ctx, &meta.Project{Name: "library", Metadata: map[string]string{meta.MetaPublic: "true"}})
			require.NoError(t, err)
			c := projectcache.New(f, tt.ttl, projectcache.WithClock(clk.Now))
			want := tt.run(t, c, f, clk)
			require.Equal(t, want, f.Reads())
		})
	}
}

// TestConcurrent exercises the cache from many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	_, err := f.CreateProject(ctx, &meta.Project{Name: "library", Metadata: map[string]string{"k": "v"}})
	require.NoError(t, err)
	c := projectcache.New(f, ttl, projectcache.WithClock(newClock().Now)) // no expiry during the test
	const workers, gets, updateEvery = 8, 200, 50
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for j := range gets {
				p, err := c.GetProjectByName(ctx, "library")
				if err != nil {
					t.Error(err)
					return
				}
				// Every caller gets its own copy: what other callers did to theirs never shows here.
				if got := p.Metadata["k"]; got != "v" {
					t.Errorf("worker %d get %d: metadata k = %q, want v (another caller's change leaked)", i, j, got)
					return
				}
				p.Metadata["k"] = fmt.Sprint(i, j) // callers may mutate what they get
				if j%updateEvery == 0 {
					if err := c.UpdateProject(ctx, &meta.Project{ID: p.ID, Metadata: map[string]string{"k": "v"}}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	// Neither the store nor the cache kept a caller's change.
	stored, err := f.GetProjectByName(ctx, "library")
	require.NoError(t, err)
	require.Equal(t, "v", stored.Metadata["k"])
	p := getByName(t, c, "library")
	require.Equal(t, "v", p.Metadata["k"])
	// The cache served the gets: each worker read the store at most once per cache generation (the first
	// fill, then one per update), plus the two reads above; without the cache it would be once per get.
	require.LessOrEqual(t, f.Reads(), (1+workers*(gets/updateEvery))*workers+2, "store reads")
}

// TestSQLStore runs the cache over the real store: writes through the cache show at once.
func TestSQLStore(t *testing.T) {
	ctx := context.Background()
	c := projectcache.New(metatest.Open(t, sqltest.SQLite(t)), time.Hour)

	id, err := c.CreateProject(ctx, &meta.Project{Name: "library", Metadata: map[string]string{meta.MetaPublic: "true"}})
	require.NoError(t, err)
	p := getByName(t, c, "library")
	require.Equal(t, id, p.ID)
	require.True(t, p.Public())

	p.Metadata[meta.MetaPublic] = "false"
	require.NoError(t, c.UpdateProject(ctx, p))
	for name, get := range map[string]func() (*meta.Project, error){
		"by name": func() (*meta.Project, error) { return c.GetProjectByName(ctx, "library") },
		"by ID":   func() (*meta.Project, error) { return c.GetProject(ctx, id) },
	} {
		q, err := get()
		require.NoError(t, err, name)
		require.False(t, q.Public(), name)
	}

	require.NoError(t, c.DeleteProject(ctx, id))
	_, err = c.GetProjectByName(ctx, "library")
	require.ErrorIs(t, err, meta.ErrNotFound)
	_, err = c.GetProject(ctx, id)
	require.ErrorIs(t, err, meta.ErrNotFound)
}

// BenchmarkGetProjectByName compares the SQLite store ("store") with the cache over it ("cached").
func BenchmarkGetProjectByName(b *testing.B) {
	ctx := context.Background()
	s := metatest.Open(b, sqltest.SQLite(b))
	_, err := s.CreateProject(ctx, &meta.Project{Name: "library", Metadata: map[string]string{meta.MetaPublic: "true"}})
	require.NoError(b, err)
	for _, v := range []struct {
		name string
		ps   meta.ProjectStore
	}{{"store", s}, {"cached", projectcache.New(s, 2*time.Second)}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.ps.GetProjectByName(ctx, "library"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// getByName reads the project name through c and requires it found.
func getByName(t *testing.T, c *projectcache.Store, name string) *meta.Project {
	t.Helper()
	p, err := c.GetProjectByName(context.Background(), name)
	require.NoError(t, err)
	return p
}
