package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
)

const (
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtDockerConfig   = "application/vnd.docker.container.image.v1+json"
	mtSchema1        = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	// A deprecated type that old images still carry (the conformance suite pushes it).
	mtNonDistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
)

func TestManifestPushPull(t *testing.T) {
	e := newEnv(t)
	const repo = "private/app"
	// Odd spacing and key order: the registry must serve these exact bytes back.
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	cfgD := e.pushBlob(repo, cfg)
	layer := []byte("layer bytes")
	layerD := e.pushBlob(repo, layer)
	body := []byte(`{  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "layers": [ {"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + layerD.String() + `","size":11} ],
  "config": {"size":37,"digest":"` + cfgD.String() + `","mediaType":"application/vnd.oci.image.config.v1+json"},
  "annotations": {"b":"2","a":"1"}
}`)
	d := digest.FromBytes(body)

	r := e.pushManifest(repo, "v1", ocispec.MediaTypeImageManifest+"; charset=utf-8", body)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, "/v2/"+repo+"/manifests/"+d.String(), r.header.Get("Location"))
	require.Equal(t, d.String(), r.header.Get("Docker-Content-Digest"))
	require.Empty(t, r.header.Get("OCI-Subject"))

	for _, ref := range []string{"v1", d.String()} {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			t.Run(m+" "+ref, func(t *testing.T) {
				r := e.do(req{method: m, path: "/v2/" + repo + "/manifests/" + ref})
				require.Equal(t, http.StatusOK, r.status)
				require.Equal(t, ocispec.MediaTypeImageManifest, r.header.Get("Content-Type"))
				require.Equal(t, strconv.Itoa(len(body)), r.header.Get("Content-Length"))
				require.Equal(t, d.String(), r.header.Get("Docker-Content-Digest"))
				if m == http.MethodGet {
					require.Equal(t, body, r.body)
				} else {
					require.Empty(t, r.body)
				}
			})
		}
	}

	t.Run("pull time is recorded in the background", func(t *testing.T) {
		require.NoError(t, e.svc.Close()) // waits for the updates in flight
		a, err := e.meta.GetArtifact(context.Background(), repo, d.String())
		require.NoError(t, err)
		require.False(t, a.PullTime.IsZero())
		require.Equal(t, ocispec.MediaTypeImageConfig, a.ArtifactType)
		require.Equal(t, map[string]string{"a": "1", "b": "2"}, a.Annotations)
	})
}

func TestManifestSHA512(t *testing.T) {
	e := newEnv(t)
	body := e.imageManifest("private/app", imageOpts{seed: "512"})
	d := digest.SHA512.FromBytes(body)
	r := e.pushManifest("private/app", d.String(), ocispec.MediaTypeImageManifest, body)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, d.String(), r.header.Get("Docker-Content-Digest"))
	require.Equal(t, "/v2/private/app/manifests/"+d.String(), r.header.Get("Location"))

	r = e.do(req{method: http.MethodGet, path: "/v2/private/app/manifests/" + d.String()})
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, body, r.body)
	require.Equal(t, d.String(), r.header.Get("Docker-Content-Digest"))
	// Only the digest it was pushed by names it.
	r = e.do(req{method: http.MethodGet, path: "/v2/private/app/manifests/" + digest.FromBytes(body).String()})
	requireError(t, r, http.StatusNotFound, "MANIFEST_UNKNOWN")
}

func TestManifestKinds(t *testing.T) {
	e := newEnv(t)
	const repo = "private/kinds"
	img := e.pushImage(repo, "", imageOpts{seed: "child"})
	cfg := []byte(`{"docker":true}`)
	cfgD := e.pushBlob(repo, cfg)
	layer := []byte("docker layer")
	layerD := e.pushBlob(repo, layer)
	docker := []byte(`{"schemaVersion":2,"mediaType":"` + mtDockerManifest + `","config":{"mediaType":"` + mtDockerConfig +
		`","size":15,"digest":"` + cfgD.String() + `"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":12,"digest":"` +
		layerD.String() + `"}]}`)
	dockerD := digest.FromBytes(docker)
	nondist := []byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","config":{"mediaType":"` + ocispec.MediaTypeImageConfig +
		`","size":15,"digest":"` + cfgD.String() + `"},"layers":[{"mediaType":"` + mtNonDistributable +
		`","size":123,"digest":"` + digest.FromString("elsewhere").String() + `","urls":["https://example.com/layer"]}]}`)
	noLayers := []byte(`{"schemaVersion":2,"config":{"mediaType":"` + ocispec.MediaTypeEmptyJSON + `","size":15,"digest":"` + cfgD.String() + `"},"layers":[]}`)

	for _, tc := range []struct {
		name      string
		mediaType string
		body      []byte
	}{
		{"docker schema2", mtDockerManifest, docker},
		{"docker manifest list", mtDockerList, []byte(`{"schemaVersion":2,"mediaType":"` + mtDockerList + `","manifests":[{"mediaType":"` +
			mtDockerManifest + `","size":` + strconv.Itoa(len(docker)) + `,"digest":"` + dockerD.String() + `","platform":{"architecture":"amd64","os":"linux"}}]}`)},
		{"oci index", ocispec.MediaTypeImageIndex, []byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex +
			`","manifests":[{"mediaType":"` + ocispec.MediaTypeImageManifest + `","size":` + strconv.Itoa(int(img.size)) + `,"digest":"` + img.digest.String() + `"}]}`)},
		{"non-distributable layer not pushed", ocispec.MediaTypeImageManifest, nondist},
		{"no layers, no mediaType field", ocispec.MediaTypeImageManifest, noLayers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.pushManifest(repo, "t-"+strconv.Itoa(len(tc.body)), tc.mediaType, tc.body)
			require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
			r = e.do(req{method: http.MethodGet, path: "/v2/" + repo + "/manifests/" + digest.FromBytes(tc.body).String()})
			require.Equal(t, http.StatusOK, r.status)
			require.Equal(t, tc.mediaType, r.header.Get("Content-Type"))
			require.Equal(t, tc.body, r.body)
		})
	}
}

func TestManifestPushErrors(t *testing.T) {
	e := newEnv(t)
	const repo = "private/app"
	valid := e.imageManifest(repo, imageOpts{seed: "valid"})
	validD := digest.FromBytes(valid)
	missing := digest.FromString("missing")
	withMissingLayer := editManifest(t, valid, func(m *ocispec.Manifest) {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: missing, Size: 3})
	})
	withMissingConfig := bytes.Replace(valid, []byte(e.mustConfigDigest(valid)), []byte(missing.String()), 1)
	indexMissingChild := []byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex + `","manifests":[{"mediaType":"` +
		ocispec.MediaTypeImageManifest + `","size":10,"digest":"` + missing.String() + `"}]}`)
	// valid with the size of the config or of the first layer one more
	configResized := editManifest(t, valid, func(m *ocispec.Manifest) { m.Config.Size++ })
	layerResized := editManifest(t, valid, func(m *ocispec.Manifest) { m.Layers[0].Size++ })
	duplicateKey := append(bytes.Clone(valid[:len(valid)-1]), []byte(`,"schemaVersion":2}`)...)
	oversize := append(bytes.Clone(valid[:len(valid)-1]), []byte(`,"annotations":{"pad":"`+string(bytes.Repeat([]byte("x"), content.MaxManifestSize))+`"}}`)...)

	for _, tc := range []struct {
		name      string
		ref       string
		mediaType string
		body      []byte
		status    int
		code      string
	}{
		{"not JSON", "t", ocispec.MediaTypeImageManifest, []byte("{not json"), http.StatusBadRequest, "MANIFEST_INVALID"},
		{"JSON null", "t", ocispec.MediaTypeImageManifest, []byte("null"), http.StatusBadRequest, "MANIFEST_INVALID"},
		{"schema1", "t", mtSchema1, []byte(`{"schemaVersion":1,"name":"x","tag":"t","fsLayers":[]}`), http.StatusBadRequest, "MANIFEST_INVALID"},
		{"unknown media type", "t", "application/x-whatever", valid, http.StatusBadRequest, "MANIFEST_INVALID"},
		{"body type differs from Content-Type", "t", ocispec.MediaTypeImageIndex, valid, http.StatusBadRequest, "MANIFEST_INVALID"},
		{"docker type without mediaType field", "t", mtDockerManifest, []byte(`{"schemaVersion":2,"config":{"mediaType":"a","size":1,"digest":"` +
			validD.String() + `"},"layers":[]}`), http.StatusBadRequest, "MANIFEST_INVALID"},
		{"no Content-Type and no mediaType", "t", "", []byte(`{"schemaVersion":2}`), http.StatusBadRequest, "MANIFEST_INVALID"},
		{"schemaVersion 1 with OCI type", "t", ocispec.MediaTypeImageManifest, bytes.Replace(valid, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":1`), 1), http.StatusBadRequest, "MANIFEST_INVALID"},
		{"bad descriptor digest", "t", ocispec.MediaTypeImageManifest, bytes.Replace(valid, []byte(e.mustConfigDigest(valid)), []byte("sha256:nothex"), 1), http.StatusBadRequest, "MANIFEST_INVALID"},
		{"missing layer", "t", ocispec.MediaTypeImageManifest, withMissingLayer, http.StatusNotFound, "MANIFEST_BLOB_UNKNOWN"},
		{"missing config", "t", ocispec.MediaTypeImageManifest, withMissingConfig, http.StatusNotFound, "MANIFEST_BLOB_UNKNOWN"},
		{"index with missing manifest", "t", ocispec.MediaTypeImageIndex, indexMissingChild, http.StatusNotFound, "MANIFEST_BLOB_UNKNOWN"},
		{"config size differs from the blob", "t", ocispec.MediaTypeImageManifest, configResized, http.StatusBadRequest, "MANIFEST_INVALID"},
		{"layer size differs from the blob", "t", ocispec.MediaTypeImageManifest, layerResized, http.StatusBadRequest, "MANIFEST_INVALID"},
		{"duplicate JSON key", "t", ocispec.MediaTypeImageManifest, duplicateKey, http.StatusBadRequest, "MANIFEST_INVALID"},
		{"digest reference does not match", digest.FromString("x").String(), ocispec.MediaTypeImageManifest, valid, http.StatusBadRequest, "DIGEST_INVALID"},
		{"trailing whitespace changes the digest", validD.String(), ocispec.MediaTypeImageManifest, append(bytes.Clone(valid), ' ', ' '), http.StatusBadRequest, "DIGEST_INVALID"},
		{"malformed digest reference", "sha256:baddigeststring", ocispec.MediaTypeImageManifest, valid, http.StatusBadRequest, "DIGEST_INVALID"},
		{"invalid tag", "-bad", ocispec.MediaTypeImageManifest, valid, http.StatusBadRequest, "MANIFEST_INVALID"},
		{"over 4 MiB", "t", ocispec.MediaTypeImageManifest, oversize, http.StatusRequestEntityTooLarge, "SIZE_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.pushManifest(repo, tc.ref, tc.mediaType, tc.body)
			requireError(t, r, tc.status, tc.code)
			// Nothing was recorded.
			r = e.do(req{method: http.MethodHead, path: "/v2/" + repo + "/manifests/" + digest.FromBytes(tc.body).String()})
			require.Equal(t, http.StatusNotFound, r.status)
		})
	}
	r := e.do(req{method: http.MethodGet, path: "/v2/" + repo + "/tags/list"})
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, `{"name":"private/app","tags":[]}`, string(r.body))

	t.Run("exactly 4 MiB is read, not refused for size", func(t *testing.T) {
		pad := content.MaxManifestSize - len(valid) - len(`,"annotations":{"pad":""}`)
		body := append(bytes.Clone(valid[:len(valid)-1]), []byte(`,"annotations":{"pad":"`+string(bytes.Repeat([]byte("y"), pad))+`"}}`)...)
		require.Len(t, body, content.MaxManifestSize)
		r := e.pushManifest(repo, "big", ocispec.MediaTypeImageManifest, body)
		require.Equal(t, http.StatusCreated, r.status, "body: %.300s", r.body)
	})
}

// editManifest returns the image manifest body with edit applied to it, encoded again.
func editManifest(t *testing.T, body []byte, edit func(*ocispec.Manifest)) []byte {
	t.Helper()
	var m ocispec.Manifest
	require.NoError(t, json.Unmarshal(body, &m))
	edit(&m)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

// mustConfigDigest returns the config digest of an image manifest.
func (e *env) mustConfigDigest(body []byte) string {
	e.t.Helper()
	var m ocispec.Manifest
	require.NoError(e.t, json.Unmarshal(body, &m))
	return m.Config.Digest.String()
}

func TestManifestGetErrors(t *testing.T) {
	e := newEnv(t)
	e.pushImage("private/app", "v1", imageOpts{seed: "x"})
	for _, tc := range []struct {
		name   string
		path   string
		status int
		code   string
	}{
		{"unknown tag", "/v2/private/app/manifests/nope", http.StatusNotFound, "MANIFEST_UNKNOWN"},
		{"unknown digest", "/v2/private/app/manifests/" + digest.FromString("x").String(), http.StatusNotFound, "MANIFEST_UNKNOWN"},
		{"other repository", "/v2/private/other/manifests/v1", http.StatusNotFound, "MANIFEST_UNKNOWN"},
		{"malformed digest", "/v2/private/app/manifests/sha256:baddigeststring", http.StatusBadRequest, "DIGEST_INVALID"},
		{"malformed tag", "/v2/private/app/manifests/.bad", http.StatusBadRequest, "MANIFEST_INVALID"},
		{"tag too long", "/v2/private/app/manifests/" + strings.Repeat("t", 129), http.StatusBadRequest, "MANIFEST_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, e.do(req{method: http.MethodGet, path: tc.path}), tc.status, tc.code)
			require.Equal(t, tc.status, e.do(req{method: http.MethodHead, path: tc.path}).status, "HEAD")
		})
	}
}

func TestManifestDelete(t *testing.T) {
	e := newEnv(t)
	const repo = "private/app"
	img := e.pushImage(repo, "v1", imageOpts{seed: "del"})
	r := e.pushManifest(repo, "v2", ocispec.MediaTypeImageManifest, img.body)
	require.Equal(t, http.StatusCreated, r.status)
	get := func(ref string) int {
		return e.do(req{method: http.MethodHead, path: "/v2/" + repo + "/manifests/" + ref}).status
	}

	r = e.do(req{method: http.MethodDelete, path: "/v2/" + repo + "/manifests/v1"})
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	require.Equal(t, http.StatusNotFound, get("v1"))
	require.Equal(t, http.StatusOK, get("v2"))
	require.Equal(t, http.StatusOK, get(img.digest.String()))

	requireError(t, e.do(req{method: http.MethodDelete, path: "/v2/" + repo + "/manifests/v1"}), http.StatusNotFound, "MANIFEST_UNKNOWN")

	r = e.do(req{method: http.MethodDelete, path: "/v2/" + repo + "/manifests/" + img.digest.String()})
	require.Equal(t, http.StatusAccepted, r.status)
	require.Equal(t, http.StatusNotFound, get(img.digest.String()))
	require.Equal(t, http.StatusNotFound, get("v2"), "tags go with the manifest")
	requireError(t, e.do(req{method: http.MethodDelete, path: "/v2/" + repo + "/manifests/" + img.digest.String()}), http.StatusNotFound, "MANIFEST_UNKNOWN")
}
