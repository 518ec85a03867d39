package mirror_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/mirror"
)

// fixture: a Docker Hub proxy, a distribution proxy on 127.0.0.2:5000 with an extra namespace, a ghcr
// proxy, a second Docker Hub proxy (newer, so it loses docker.io), a local project named like Docker
// Hub's "library", and a proxy whose explicit claim takes quay.io from an older derived claim.
func fixture() ([]*meta.Project, map[int64]*meta.Registry) {
	regs := map[int64]*meta.Registry{
		1: {ID: 1, Type: "docker-hub", URL: "https://registry-1.docker.io"},
		2: {ID: 2, Type: "docker-registry", URL: "http://127.0.0.2:5000"},
		3: {ID: 3, Type: "github-ghcr", URL: "https://GHCR.io"},
		4: {ID: 4, Type: "docker-registry", URL: "https://quay.io"},
	}
	projects := []*meta.Project{
		{ID: 10, Name: "dockerhub", RegistryID: 1},
		{ID: 11, Name: "dist", RegistryID: 2, Metadata: map[string]string{mirror.MetaNamespaces: "registry.example,reg-a.test"}},
		{ID: 12, Name: "ghcr", RegistryID: 3},
		{ID: 13, Name: "hub2", RegistryID: 1},
		{ID: 14, Name: "library"},
		{ID: 15, Name: "quay-old", RegistryID: 4},
		{ID: 16, Name: "quay-new", RegistryID: 2, Metadata: map[string]string{mirror.MetaNamespaces: "quay.io"}},
		{ID: 17, Name: "local"},
	}
	return projects, regs
}

func TestResolve(t *testing.T) {
	projects, regs := fixture()
	withDefault := mirror.NewTable(projects, regs, "dockerhub")
	noDefault := mirror.NewTable(projects, regs, "")
	tests := []struct {
		name     string
		table    *mirror.Table
		ns, repo string
		want     mirror.Route
		unknown  bool
	}{
		{"docker.io, library name", noDefault, "docker.io", "library/nginx", mirror.Route{Project: "dockerhub", Path: "library/nginx", Namespace: "docker.io"}, false},
		{"docker.io, one segment gets library/", noDefault, "docker.io", "nginx", mirror.Route{Project: "dockerhub", Path: "library/nginx", Namespace: "docker.io"}, false},
		{"registry-1.docker.io", noDefault, "registry-1.docker.io", "bitnami/redis", mirror.Route{Project: "dockerhub", Path: "bitnami/redis", Namespace: "registry-1.docker.io"}, false},
		{"index.docker.io, upper case", noDefault, "Index.Docker.IO", "library/alpine", mirror.Route{Project: "dockerhub", Path: "library/alpine", Namespace: "index.docker.io"}, false},
		{"ns wins over a local project of the same name", noDefault, "docker.io", "library/busybox", mirror.Route{Project: "dockerhub", Path: "library/busybox", Namespace: "docker.io"}, false},
		{"per-project form (override_path)", noDefault, "docker.io", "dockerhub/library/nginx", mirror.Route{Project: "dockerhub", Path: "library/nginx", Namespace: "docker.io"}, false},
		{"per-project form, one segment", noDefault, "docker.io", "dockerhub/nginx", mirror.Route{Project: "dockerhub", Path: "library/nginx", Namespace: "docker.io"}, false},
		{"registry host with port", noDefault, "127.0.0.2:5000", "team/app", mirror.Route{Project: "dist", Path: "team/app", Namespace: "127.0.0.2:5000"}, false},
		{"no library/ rule off Docker Hub", noDefault, "127.0.0.2:5000", "app", mirror.Route{Project: "dist", Path: "app", Namespace: "127.0.0.2:5000"}, false},
		{"mirror_namespaces adds names", noDefault, "reg-a.test", "team/app", mirror.Route{Project: "dist", Path: "team/app", Namespace: "reg-a.test"}, false},
		{"ghcr host from the URL, lower-cased", noDefault, "ghcr.io", "org/tool", mirror.Route{Project: "ghcr", Path: "org/tool", Namespace: "ghcr.io"}, false},
		{"conflict: oldest derived claim wins", noDefault, "docker.io", "hub2/x/y", mirror.Route{Project: "dockerhub", Path: "hub2/x/y", Namespace: "docker.io"}, false},
		{"conflict: explicit claim wins", noDefault, "quay.io", "org/img", mirror.Route{Project: "quay-new", Path: "org/img", Namespace: "quay.io"}, false},
		{"unknown ns, first segment a project", noDefault, "berth.example", "local/app", mirror.Route{}, false},
		{"unknown ns, first segment no project", noDefault, "unknown.example", "bitnami/redis", mirror.Route{}, true},
		{"unknown ns, one segment", withDefault, "unknown.example", "nginx", mirror.Route{}, true},
		{"unknown ns, the default project does not apply", withDefault, "unknown.example", "team/app", mirror.Route{}, true},
		{"no ns, a project", withDefault, "", "local/app", mirror.Route{}, false},
		{"no ns, a local project named library stays local", withDefault, "", "library/nginx", mirror.Route{}, false},
		{"no ns, no project: the default project", withDefault, "", "bitnami/redis", mirror.Route{Project: "dockerhub", Path: "bitnami/redis"}, false},
		{"no ns, one segment: default with library/", withDefault, "", "nginx", mirror.Route{Project: "dockerhub", Path: "library/nginx"}, false},
		{"no ns, no default: as usual", noDefault, "", "bitnami/redis", mirror.Route{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.table.Resolve(tc.ns, tc.repo)
			if tc.unknown {
				require.ErrorIs(t, err, mirror.ErrUnknownNamespace)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestConflicts(t *testing.T) {
	projects, regs := fixture()
	got := mirror.NewTable(projects, regs, "").Conflicts()
	require.Equal(t, []mirror.Conflict{
		{Namespace: "127.0.0.2:5000", Winner: "dist", Losers: []string{"quay-new"}},
		{Namespace: "docker.io", Winner: "dockerhub", Losers: []string{"hub2"}},
		{Namespace: "index.docker.io", Winner: "dockerhub", Losers: []string{"hub2"}},
		{Namespace: "quay.io", Winner: "quay-new", Losers: []string{"quay-old"}},
		{Namespace: "registry-1.docker.io", Winner: "dockerhub", Losers: []string{"hub2"}},
	}, got)
}

func TestDefaultProjectDockerHubRuleOnlyForHub(t *testing.T) {
	projects, regs := fixture()
	got, err := mirror.NewTable(projects, regs, "dist").Resolve("", "nginx")
	require.NoError(t, err)
	require.Equal(t, mirror.Route{Project: "dist", Path: "nginx"}, got)
}
