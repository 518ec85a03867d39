package mirror_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/mirror"
)

// fakeSource is a hand-written Source that counts the tables built from it.
type fakeSource struct {
	mu         sync.Mutex
	projects   []*meta.Project
	registries []*meta.Registry
	fail       error
	builds     int // ListProjects calls at offset 0
}

func (f *fakeSource) ListProjects(_ context.Context, _ string, offset, limit int) ([]*meta.Project, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if offset == 0 {
		f.builds++
	}
	if f.fail != nil {
		return nil, 0, f.fail
	}
	return page(f.projects, offset, limit), int64(len(f.projects)), nil
}

func (f *fakeSource) ListRegistries(_ context.Context, _ string, offset, limit int) ([]*meta.Registry, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return page(f.registries, offset, limit), int64(len(f.registries)), nil
}

func page[T any](all []T, offset, limit int) []T {
	if offset >= len(all) {
		return nil
	}
	return all[offset:min(offset+limit, len(all))]
}

func (f *fakeSource) set(fn func(*fakeSource)) { f.mu.Lock(); fn(f); f.mu.Unlock() }

func (f *fakeSource) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.builds }

func TestRouterCachesAndInvalidates(t *testing.T) {
	ctx := context.Background()
	src := &fakeSource{
		registries: []*meta.Registry{{ID: 1, Type: "docker-hub", URL: "https://registry-1.docker.io"}},
		projects:   []*meta.Project{{ID: 1, Name: "hub", RegistryID: 1}},
	}
	now := time.Unix(1000, 0)
	r := mirror.NewRouter(src, "", 5*time.Second, nil)
	r.SetClock(func() time.Time { return now })

	route := func(ns, name string) (mirror.Route, error) { return r.Route(ctx, ns, name) }
	got, err := route("docker.io", "library/nginx")
	require.NoError(t, err)
	require.Equal(t, "hub", got.Project)
	_, err = route("docker.io", "library/alpine")
	require.NoError(t, err)
	require.Equal(t, 1, src.count(), "the table is built once and reused")

	_, err = route("", "team/app")
	require.NoError(t, err)
	require.Equal(t, 1, src.count(), "without ns and default project no table is needed")

	// A change made through the wrappers shows at the next request.
	src.set(func(f *fakeSource) {
		f.projects = append(f.projects, &meta.Project{ID: 2, Name: "dist", RegistryID: 1, Metadata: map[string]string{mirror.MetaNamespaces: "reg.example"}})
	})
	_, err = route("reg.example", "a/b")
	require.ErrorIs(t, err, mirror.ErrUnknownNamespace, "not yet invalidated")
	require.NoError(t, mirror.Projects{Next: nopProjects{}, Router: r}.UpdateProject(ctx, &meta.Project{}))
	got, err = route("reg.example", "a/b")
	require.NoError(t, err)
	require.Equal(t, "dist", got.Project)
	require.Equal(t, 2, src.count())

	// Registry writes invalidate too.
	_, err = mirror.Registries{Next: nopRegistries{}, Router: r}.CreateRegistry(ctx, &meta.Registry{})
	require.NoError(t, err)
	_, err = route("docker.io", "x/y")
	require.NoError(t, err)
	require.Equal(t, 3, src.count())

	// Other nodes' changes: the TTL.
	now = now.Add(5 * time.Second)
	_, err = route("docker.io", "x/y")
	require.NoError(t, err)
	require.Equal(t, 4, src.count())

	// A failed rebuild keeps the previous table.
	src.set(func(f *fakeSource) { f.fail = errors.New("database down") })
	r.Invalidate()
	got, err = route("reg.example", "a/b")
	require.NoError(t, err)
	require.Equal(t, "dist", got.Project)
}

func TestRouterWithoutTableFails(t *testing.T) {
	src := &fakeSource{fail: errors.New("database down")}
	r := mirror.NewRouter(src, "hub", time.Second, nil)
	_, err := r.Route(context.Background(), "", "library/nginx")
	require.ErrorContains(t, err, "database down")
}

func TestRouterPagesThroughProjects(t *testing.T) {
	src := &fakeSource{registries: []*meta.Registry{{ID: 1, Type: "docker-registry", URL: "http://up.example"}}}
	for i := range 1203 {
		src.projects = append(src.projects, &meta.Project{ID: int64(i + 1), Name: fmt.Sprintf("p%04d", i)})
	}
	src.projects = append(src.projects, &meta.Project{ID: 5000, Name: "zz-proxy", RegistryID: 1})
	r := mirror.NewRouter(src, "", time.Minute, nil)
	got, err := r.Route(context.Background(), "up.example", "a/b")
	require.NoError(t, err)
	require.Equal(t, "zz-proxy", got.Project)
	got, err = r.Route(context.Background(), "up.example", "p1202/b")
	require.NoError(t, err)
	require.Equal(t, mirror.Route{Project: "zz-proxy", Path: "p1202/b", Namespace: "up.example"}, got)
	_, err = r.Route(context.Background(), "other.example", "p1202/b")
	require.NoError(t, err, "the last page's projects are known")
}

type nopProjects struct{ meta.ProjectStore }

func (nopProjects) UpdateProject(context.Context, *meta.Project) error { return nil }

type nopRegistries struct{ meta.RegistryStore }

func (nopRegistries) CreateRegistry(context.Context, *meta.Registry) (int64, error) { return 1, nil }
