package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content/local"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/mirror"
	"github.com/berth-registry/berth/src/server/registry"
)

// TestMirrorRoutes drives the handler with the real mirror router over the real metadata store: ns
// routing with the OCI-Namespace header, Docker Hub's one-component names, unknown namespaces, the
// default project, the project's authorization, and the anonymous /v2/ ping Docker's registry-mirrors
// need.
func TestMirrorRoutes(t *testing.T) {
	e, regID := newMirrorEnv(t, envOpts{handler: registry.Options{AnonymousBase: true}})
	_, err := e.meta.CreateProject(context.Background(), &meta.Project{Name: "ghcrproxy", RegistryID: regID, Metadata: map[string]string{mirror.MetaNamespaces: "ghcr.io"}})
	require.NoError(t, err)

	// The local service stands in for the pull-through one: routing is what is tested here.
	hub := e.pushImage("hubproxy/library/app", "v1", imageOpts{seed: "hub"})
	private := e.pushImage("ghcrproxy/org/tool", "v1", imageOpts{seed: "ghcr"})
	def := e.pushImage("public/bitnami/redis", "v1", imageOpts{seed: "default"})

	for _, tc := range []struct {
		name   string
		path   string
		as     int
		status int
		code   string
		digest string
		ns     string
	}{
		{"anonymous ping", "/v2/", asAnon, http.StatusOK, "", "", ""},
		{"ns docker.io", "/v2/library/app/manifests/v1?ns=docker.io", asAnon, http.StatusOK, "", hub.digest.String(), "docker.io"},
		{"one-component name gets library/", "/v2/app/manifests/v1?ns=docker.io", asAnon, http.StatusOK, "", hub.digest.String(), "docker.io"},
		{"per-project form", "/v2/hubproxy/library/app/manifests/v1?ns=docker.io", asAnon, http.StatusOK, "", hub.digest.String(), "docker.io"},
		{"HEAD through ns", "/v2/library/app/manifests/" + hub.digest.String() + "?ns=registry-1.docker.io", asAnon, http.StatusOK, "", hub.digest.String(), "registry-1.docker.io"},
		{"private project through ns, anonymous", "/v2/org/tool/manifests/v1?ns=ghcr.io", asAnon, http.StatusUnauthorized, "UNAUTHORIZED", "", ""},
		{"private project through ns, admin", "/v2/org/tool/manifests/v1?ns=ghcr.io", asAdmin, http.StatusOK, "", private.digest.String(), "ghcr.io"},
		{"unknown ns", "/v2/library/app/manifests/v1?ns=quay.io", asAnon, http.StatusNotFound, "NAME_UNKNOWN", "", ""},
		{"unknown ns, one component", "/v2/app/manifests/v1?ns=quay.io", asAdmin, http.StatusNotFound, "NAME_UNKNOWN", "", ""},
		{"default project", "/v2/bitnami/redis/manifests/v1", asAnon, http.StatusOK, "", def.digest.String(), ""},
		{"a project's own name wins without ns", "/v2/hubproxy/library/app/manifests/v1", asAnon, http.StatusOK, "", hub.digest.String(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodGet
			if tc.name == "HEAD through ns" {
				method = http.MethodHead
			}
			r := e.do(req{method: method, path: tc.path, as: tc.as})
			if tc.code != "" {
				requireError(t, r, tc.status, tc.code)
			} else {
				require.Equal(t, tc.status, r.status, "body: %s", r.body)
			}
			require.Equal(t, tc.ns, r.header.Get("OCI-Namespace"))
			if tc.digest != "" {
				require.Equal(t, tc.digest, r.header.Get("Docker-Content-Digest"))
			}
		})
	}
}

// newMirrorEnv is an env on o whose handler routes through the real mirror router over its store, with
// "public" as the default project, a Docker Hub registry (its ID is returned) and the public proxy
// project "hubproxy" of that registry.
func newMirrorEnv(t *testing.T, o envOpts) (*env, int64) {
	t.Helper()
	var router *mirror.Router
	o.handler.Mirror = routerFunc(func(ctx context.Context, ns, name string) (mirror.Route, error) {
		return router.Route(ctx, ns, name)
	})
	e := newEnv(t, o)
	ctx := context.Background()
	regID, err := e.meta.CreateRegistry(ctx, &meta.Registry{Name: "hub", Type: "docker-hub", URL: "https://registry-1.docker.io"})
	require.NoError(t, err)
	_, err = e.meta.CreateProject(ctx, &meta.Project{Name: "hubproxy", RegistryID: regID, Metadata: map[string]string{meta.MetaPublic: "true"}})
	require.NoError(t, err)
	router = mirror.NewRouter(e.meta, "public", time.Minute, nil)
	return e, regID
}

type routerFunc func(ctx context.Context, ns, name string) (mirror.Route, error)

func (f routerFunc) Route(ctx context.Context, ns, name string) (mirror.Route, error) {
	return f(ctx, ns, name)
}

// TestMirrorListsAsAsked: a tags list through a mirror route names the repository as the client asked
// for it (not the project's internal name), and its Link, like a referrers Link, leads back in that form
// with the ns parameter kept, so following it reaches the same project.
func TestMirrorListsAsAsked(t *testing.T) {
	e, _ := newMirrorEnv(t, envOpts{local: local.Options{MaxReferrersPage: 10, ReferrersPageSize: 2}})
	hub := e.pushImage("hubproxy/library/app", "a", imageOpts{seed: "hub"})
	def := e.pushImage("public/bitnami/redis", "a", imageOpts{seed: "default"})
	for _, tag := range []string{"b", "c"} {
		require.Equal(t, http.StatusCreated, e.pushManifest("hubproxy/library/app", tag, ocispec.MediaTypeImageManifest, hub.body).status)
		require.Equal(t, http.StatusCreated, e.pushManifest("public/bitnami/redis", tag, ocispec.MediaTypeImageManifest, def.body).status)
	}

	for _, tc := range []struct {
		name, path, wantName, ns string
		links                    []string // the Link of each page followed
	}{
		{"ns form", "/v2/library/app/tags/list?n=2&ns=docker.io", "library/app", "docker.io",
			[]string{"/v2/library/app/tags/list?last=b&n=2&ns=docker.io", ""}},
		{"one-component name", "/v2/app/tags/list?ns=docker.io&n=2", "app", "docker.io",
			[]string{"/v2/app/tags/list?last=b&n=2&ns=docker.io", ""}},
		{"per-project form", "/v2/hubproxy/library/app/tags/list?n=2&ns=docker.io", "hubproxy/library/app", "docker.io",
			[]string{"/v2/hubproxy/library/app/tags/list?last=b&n=2&ns=docker.io", ""}},
		{"default project", "/v2/bitnami/redis/tags/list?n=2", "bitnami/redis", "",
			[]string{"/v2/bitnami/redis/tags/list?last=b&n=2", ""}},
		{"project form", "/v2/public/bitnami/redis/tags/list?n=2", "public/bitnami/redis", "",
			[]string{"/v2/public/bitnami/redis/tags/list?last=b&n=2", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			path := tc.path
			for _, want := range tc.links {
				r := e.do(req{method: http.MethodGet, path: path, as: asAnon})
				require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
				require.Equal(t, tc.ns, r.header.Get("OCI-Namespace"))
				var l struct {
					Name string   `json:"name"`
					Tags []string `json:"tags"`
				}
				require.NoError(t, json.Unmarshal(r.body, &l))
				require.Equal(t, tc.wantName, l.Name)
				got = append(got, l.Tags...)
				path = nextPath(t, r)
				require.Equal(t, want, path)
			}
			require.Equal(t, []string{"a", "b", "c"}, got)
		})
	}

	t.Run("referrers Link keeps ns", func(t *testing.T) {
		for i := range 3 {
			e.pushReferrer("hubproxy/library/app", hub, imageOpts{seed: fmt.Sprintf("r%d", i), artifactType: atSBOM})
		}
		all, sizes := e.walkReferrers("/v2/library/app/referrers/"+hub.digest.String()+"?ns=docker.io", func(next *url.URL) {
			require.Equal(t, "/v2/library/app/referrers/"+hub.digest.String(), next.Path)
			require.Equal(t, "docker.io", next.Query().Get("ns"))
		})
		require.Len(t, all, 3)
		require.Equal(t, []int{2, 1}, sizes)
	})
}
