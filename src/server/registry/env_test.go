package registry_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/content/contenttest"
	"github.com/berth-registry/berth/src/pkg/content/local"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/storage"
	"github.com/berth-registry/berth/src/server/registry"
)

const adminPassword = "s3cret"

// Caller identities of a request.
const (
	asAdmin = iota
	asAnon
	asWrongPassword
	asEmptyBasic // Basic credentials with an empty user and password, as containers/image sends without any
)

// env is a registry handler over the real storage.FS and meta on SQLite, in a temp dir, with projects
// "private", "public" (anonymous pull) and "other" (private).
type env struct {
	t    *testing.T
	srv  *httptest.Server
	h    *registry.Handler
	svc  *local.Service
	meta meta.Store
}

type envOpts struct {
	handler registry.Options
	local   local.Options
	// wrap, when set, wraps the content service given to the handler.
	wrap func(content.Service) content.Service
	// auth tunes the handler's Authenticator.
	auth []auth.Option
	// blobs, when set, replaces the storage.FS in the temp dir.
	blobs storage.Store
}

func newEnv(t *testing.T, opts ...envOpts) *env {
	t.Helper()
	var o envOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	fsys, ms := contenttest.Stores(t)
	var fs storage.Store = fsys
	if o.blobs != nil {
		fs = o.blobs
	}
	contenttest.CreateProjects(t, ms,
		&meta.Project{Name: "private"},
		&meta.Project{Name: "public", Metadata: map[string]string{meta.MetaPublic: "true"}},
		&meta.Project{Name: "other"})
	svc := local.New(fs, ms, ms, o.local)
	t.Cleanup(func() { _ = svc.Close() })
	var cs content.Service = svc
	if o.wrap != nil {
		cs = o.wrap(svc)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := registry.New(cs, ms, auth.NewAuthenticator(adminPassword, o.auth...), log, o.handler)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, h: h, svc: svc, meta: ms}
}

// req is one HTTP request to the env's server.
type req struct {
	method string
	path   string // path and query
	body   []byte
	header map[string]string
	as     int
}

// resp is a fully read response.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(r req) resp {
	e.t.Helper()
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, bytes.NewReader(r.body))
	require.NoError(e.t, err)
	if r.body == nil {
		hr.Body = http.NoBody
		hr.ContentLength = 0
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	switch r.as {
	case asAdmin:
		hr.SetBasicAuth(auth.AdminUser, adminPassword)
	case asWrongPassword:
		hr.SetBasicAuth(auth.AdminUser, "wrong")
	case asEmptyBasic:
		hr.SetBasicAuth("", "")
	}
	res, err := e.srv.Client().Do(hr)
	require.NoError(e.t, err)
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return resp{status: res.StatusCode, header: res.Header, body: body}
}

// errorCode returns the code of the first OCI error in an error body ("" when there is none).
func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var eb struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(body, &eb), "error body: %s", body)
	require.NotEmpty(t, eb.Errors, "error body: %s", body)
	require.NotEmpty(t, eb.Errors[0].Message)
	return eb.Errors[0].Code
}

// requireError checks an OCI error response.
func requireError(t *testing.T, r resp, status int, code string) {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	require.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
	require.Equal(t, code, errorCode(t, r.body))
}

// pushBlob uploads data monolithically into repo and returns its digest.
func (e *env) pushBlob(repo string, data []byte) digest.Digest {
	e.t.Helper()
	d := digest.FromBytes(data)
	r := e.do(req{method: http.MethodPost, path: "/v2/" + repo + "/blobs/uploads/?digest=" + d.String(), body: data})
	require.Equal(e.t, http.StatusCreated, r.status, "body: %s", r.body)
	return d
}

// pushManifest pushes body under ref with the given Content-Type and returns the response.
func (e *env) pushManifest(repo, ref, mediaType string, body []byte) resp {
	e.t.Helper()
	return e.do(req{method: http.MethodPut, path: "/v2/" + repo + "/manifests/" + ref, body: body,
		header: map[string]string{"Content-Type": mediaType}})
}

// image is a pushed image manifest.
type image struct {
	digest digest.Digest
	body   []byte
	size   int64
}

// imageOpts shape a generated image manifest.
type imageOpts struct {
	configType   string // default ocispec.MediaTypeImageConfig
	artifactType string
	subject      *image
	annotations  map[string]string
	seed         string // makes the content unique
}

// pushImage pushes a config and a layer blob and an OCI image manifest referencing them, by tag when tag
// != "" else by digest.
func (e *env) pushImage(repo, tag string, o imageOpts) image {
	e.t.Helper()
	body := e.imageManifest(repo, o)
	d := digest.FromBytes(body)
	ref := tag
	if ref == "" {
		ref = d.String()
	}
	r := e.pushManifest(repo, ref, ocispec.MediaTypeImageManifest, body)
	require.Equal(e.t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(e.t, d.String(), r.header.Get("Docker-Content-Digest"))
	return image{digest: d, body: body, size: int64(len(body))}
}

// imageManifest uploads the blobs of an image manifest and returns the manifest's bytes.
func (e *env) imageManifest(repo string, o imageOpts) []byte {
	e.t.Helper()
	ct := o.configType
	if ct == "" {
		ct = ocispec.MediaTypeImageConfig
	}
	cfg := []byte(`{"seed":"` + o.seed + `"}`)
	layer := []byte("layer " + o.seed)
	m := ocispec.Manifest{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: o.artifactType,
		Config:       ocispec.Descriptor{MediaType: ct, Digest: e.pushBlob(repo, cfg), Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: e.pushBlob(repo, layer),
			Size: int64(len(layer))}},
		Annotations: o.annotations,
	}
	m.SchemaVersion = 2
	if o.subject != nil {
		m.Subject = &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: o.subject.digest, Size: o.subject.size}
	}
	body, err := json.Marshal(m)
	require.NoError(e.t, err)
	return body
}
