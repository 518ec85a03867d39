package registry_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content/contenttest"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// TestSparseManifests covers the project metadata allow_sparse_manifests: off (the default), a manifest
// referencing a layer or child manifest the repository lacks is refused; on, it is accepted, but the
// config is still required and what is absent is never served.
func TestSparseManifests(t *testing.T) {
	e := newEnv(t)
	sparse := &meta.Project{Name: "sparse", Metadata: map[string]string{meta.MetaAllowSparseManifests: "true"}}
	contenttest.CreateProjects(t, e.meta, sparse)
	missingLayer := digest.FromString("layer never pushed")
	missingChild := digest.FromString("child never pushed")

	// bodies builds, in repo, an image manifest with one missing layer, one with a missing config and an
	// index listing a pushed image and a missing one.
	bodies := func(repo string) (withLayer, withConfig, index []byte) {
		valid := e.imageManifest(repo, imageOpts{seed: repo})
		withLayer = editManifest(t, valid, func(m *ocispec.Manifest) {
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: missingLayer, Size: 3})
		})
		withConfig = editManifest(t, withLayer, func(m *ocispec.Manifest) { m.Config.Digest = digest.FromString("config never pushed") })
		child := e.pushImage(repo, "", imageOpts{seed: repo + " child"})
		idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
			{MediaType: ocispec.MediaTypeImageManifest, Digest: child.digest, Size: child.size},
			{MediaType: ocispec.MediaTypeImageManifest, Digest: missingChild, Size: 1024},
		}}
		idx.SchemaVersion = 2
		return withLayer, withConfig, mustJSON(t, idx)
	}

	for _, tc := range []struct {
		repo    string
		allowed bool
	}{
		{"private/app", false},
		{"sparse/app", true},
	} {
		withLayer, withConfig, index := bodies(tc.repo)
		for _, m := range []struct {
			name      string
			mediaType string
			body      []byte
			allowed   bool
		}{
			{"image with a missing layer", ocispec.MediaTypeImageManifest, withLayer, tc.allowed},
			{"index with a missing child", ocispec.MediaTypeImageIndex, index, tc.allowed},
			{"image with a missing config", ocispec.MediaTypeImageManifest, withConfig, false},
		} {
			t.Run(tc.repo+" "+m.name, func(t *testing.T) {
				d := digest.FromBytes(m.body)
				r := e.pushManifest(tc.repo, d.String(), m.mediaType, m.body)
				if !m.allowed {
					requireError(t, r, http.StatusNotFound, "MANIFEST_BLOB_UNKNOWN")
					r = e.do(req{method: http.MethodHead, path: "/v2/" + tc.repo + "/manifests/" + d.String()})
					require.Equal(t, http.StatusNotFound, r.status)
					return
				}
				require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
				r = e.do(req{method: http.MethodGet, path: "/v2/" + tc.repo + "/manifests/" + d.String()})
				require.Equal(t, http.StatusOK, r.status)
				require.Equal(t, m.body, r.body)
			})
		}
	}

	t.Run("what is absent is not served", func(t *testing.T) {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			r := e.do(req{method: m, path: "/v2/sparse/app/manifests/" + missingChild.String()})
			require.Equal(t, http.StatusNotFound, r.status, m)
			r = e.do(req{method: m, path: "/v2/sparse/app/blobs/" + missingLayer.String()})
			require.Equal(t, http.StatusNotFound, r.status, m)
		}
		r := e.do(req{method: http.MethodGet, path: "/v2/sparse/app/manifests/" + missingChild.String()})
		requireError(t, r, http.StatusNotFound, "MANIFEST_UNKNOWN")
	})

	t.Run("turning the setting off refuses sparse pushes again", func(t *testing.T) {
		sparse.Metadata[meta.MetaAllowSparseManifests] = "false"
		require.NoError(t, e.meta.UpdateProject(context.Background(), sparse))
		withLayer, _, _ := bodies("sparse/later")
		r := e.pushManifest("sparse/later", "v1", ocispec.MediaTypeImageManifest, withLayer)
		requireError(t, r, http.StatusNotFound, "MANIFEST_BLOB_UNKNOWN")
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestManifestTagParams covers PUT /v2/<name>/manifests/<digest>?tag=...: every tag is applied with the
// manifest and listed in OCI-Tag; bad tags refuse the whole push.
func TestManifestTagParams(t *testing.T) {
	e := newEnv(t)
	const repo = "private/app"
	one := e.imageManifest(repo, imageOpts{seed: "one"})
	oneD := digest.FromBytes(one)
	two := e.imageManifest(repo, imageOpts{seed: "two"})
	twoD := digest.FromBytes(two)
	tooMany := strings.Repeat("&tag=t", 101)[1:]

	for _, tc := range []struct {
		name    string
		ref     string
		query   string
		body    []byte
		status  int
		code    string
		ociTags []string
	}{
		{"by digest with two tags", oneD.String(), "tag=a&tag=b", one, http.StatusCreated, "", []string{"a", "b"}},
		{"a repeated tag once", oneD.String(), "tag=c&tag=c", one, http.StatusCreated, "", []string{"c"}},
		{"moving a tag", twoD.String(), "tag=b", two, http.StatusCreated, "", []string{"b"}},
		{"by tag with a tag parameter", "d", "tag=e", two, http.StatusCreated, "", []string{"d", "e"}},
		{"without tag parameters", twoD.String(), "", two, http.StatusCreated, "", nil},
		{"an invalid tag", oneD.String(), "tag=ok&tag=-bad", one, http.StatusBadRequest, "MANIFEST_INVALID", nil},
		{"an empty tag", oneD.String(), "tag=", one, http.StatusBadRequest, "MANIFEST_INVALID", nil},
		{"too many tags", oneD.String(), tooMany, one, http.StatusBadRequest, "MANIFEST_INVALID", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/v2/" + repo + "/manifests/" + tc.ref
			if tc.query != "" {
				path += "?" + tc.query
			}
			r := e.do(req{method: http.MethodPut, path: path, body: tc.body,
				header: map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}})
			if tc.code != "" {
				requireError(t, r, tc.status, tc.code)
				return
			}
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			require.Equal(t, tc.ociTags, r.header.Values("OCI-Tag"))
		})
	}

	want := map[string]digest.Digest{"a": oneD, "b": twoD, "c": oneD, "d": twoD, "e": twoD}
	for tag, d := range want {
		r := e.do(req{method: http.MethodHead, path: "/v2/" + repo + "/manifests/" + tag})
		require.Equal(t, http.StatusOK, r.status, tag)
		require.Equal(t, d.String(), r.header.Get("Docker-Content-Digest"), tag)
	}
	r := e.do(req{method: http.MethodGet, path: "/v2/" + repo + "/tags/list"})
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, `{"name":"private/app","tags":["a","b","c","d","e"]}`, string(r.body))
}
