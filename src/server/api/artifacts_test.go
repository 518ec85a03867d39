package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	harbor "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/repository"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/api/apitest"
)

// harborEnv is the API on SQLite behind a loopback server, with one admin and one anonymous client.
type harborEnv struct {
	store       apitest.Manifests // the real SQLite store plus manifest bytes in memory
	srv         *httptest.Server
	admin, anon *harbor.HarborAPI
	lib, priv   int64
}

func newHarborEnv(t *testing.T) *harborEnv {
	t.Helper()
	ctx := context.Background()
	store := openSQLite(t)
	e := &harborEnv{store: apitest.NewManifests(store)}
	a, _ := newAPIOn(t, store, func(d *Deps) { d.Artifacts = e.store })
	e.srv = httptest.NewServer(a)
	t.Cleanup(e.srv.Close)
	u, err := url.Parse(e.srv.URL + Prefix)
	require.NoError(t, err)
	e.admin = harbor.New(harbor.Config{URL: u, AuthInfo: httptransport.BasicAuth(auth.AdminUser, adminPassword)})
	e.anon = harbor.New(harbor.Config{URL: u})
	for _, p := range []struct {
		name   string
		public string
		id     *int64
	}{{"lib", "true", &e.lib}, {"priv", "false", &e.priv}} {
		*p.id, err = store.CreateProject(ctx, &meta.Project{Name: p.name, Metadata: map[string]string{meta.MetaPublic: p.public}})
		require.NoError(t, err)
	}
	return e
}

// put stores a manifest body in repo under tags and returns its digest.
func (e *harborEnv) put(t *testing.T, project int64, repo, mediaType, artifactType, subject, body string, pushed time.Time, tags ...string) string {
	t.Helper()
	d := digest.FromString(body).String()
	e.store.Bytes[d] = []byte(body)
	a := &meta.Artifact{Digest: d, MediaType: mediaType, ArtifactType: artifactType, Size: int64(len(body)), Subject: subject, PushTime: pushed}
	require.NoError(t, e.store.PutArtifact(context.Background(), project, repo, a, ""))
	for _, tag := range tags {
		require.NoError(t, e.store.PutArtifact(context.Background(), project, repo, a, tag))
	}
	return d
}

func ptr[T any](v T) *T { return &v }

const mtImage = "application/vnd.oci.image.manifest.v1+json"

// TestHarborRepositoriesAndArtifacts drives the repository and artifact endpoints with Harbor's
// generated Go client: field names and types, paging headers, double-encoded names, permissions.
func TestHarborRepositoriesAndArtifacts(t *testing.T) {
	e := newHarborEnv(t)
	fx := seedApp(t, e)
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, e *harborEnv, fx appFixture)
	}{
		{"list repositories with paging headers", testListRepositoriesWithPagingHeaders},
		{"name query", testNameQuery},
		{"double-encoded repository name", testDoubleencodedRepositoryName},
		{"artifacts with tags, references and accessories", testArtifactsWithTagsReferencesAndAccessories},
		{"artifact by tag and by digest, and its tags", testArtifactByTagAndByDigestAndItsTags},
		{"anonymous callers see public projects only", testAnonymousCallersSeePublicProjectsOnly},
		{"delete artifact and repository", testDeleteArtifactAndRepository},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, e, fx) })
	}
}

// appFixture is what seedApp stored in lib/app: an image (amd), an index of it and of a child not held
// (arm), a tagged image (img) and its cosign signature (sig), pushed from t0 on.
type appFixture struct {
	t0                      time.Time
	amd, arm, idx, img, sig string
}

// seedApp fills the public project lib with lib/app, lib/team/tool and ten empty repositories, and the
// private project priv with priv/secret.
func seedApp(t *testing.T, e *harborEnv) appFixture {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	amd := e.put(t, e.lib, "lib/app", mtImage, mtOCIConfig, "", `{"amd64":1}`, t0)
	arm := digest.FromString("arm64 child, not held").String()
	index := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[`+
		`{"mediaType":%q,"digest":%q,"size":11,"platform":{"architecture":"amd64","os":"linux"}},`+
		`{"mediaType":%q,"digest":%q,"size":22,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}`,
		mtOCIIndex, mtImage, amd, mtImage, arm)
	idx := e.put(t, e.lib, "lib/app", mtOCIIndex, "", "", index, t0.Add(time.Minute), "v1")
	img := e.put(t, e.lib, "lib/app", mtImage, mtOCIConfig, "", `{"image":2}`, t0.Add(2*time.Minute), "v2", "latest")
	sig := e.put(t, e.lib, "lib/app", mtImage, mtSigstoreV03, img, `{"sig":1}`, t0.Add(3*time.Minute))
	e.put(t, e.lib, "lib/team/tool", mtImage, mtOCIConfig, "", `{"tool":1}`, t0)
	for i := range 10 {
		require.NoError(t, e.store.LinkBlob(ctx, e.lib, fmt.Sprintf("lib/r%02d", i), amd, 1))
	}
	e.put(t, e.priv, "priv/secret", mtImage, mtOCIConfig, "", `{"secret":1}`, t0)
	return appFixture{t0: t0, amd: amd, arm: arm, idx: idx, img: img, sig: sig}
}

func testListRepositoriesWithPagingHeaders(t *testing.T, e *harborEnv, fx appFixture) {
	ctx := context.Background()
	res, err := e.admin.Repository.ListRepositories(ctx, repository.NewListRepositoriesParams().
		WithProjectName("lib").WithPage(ptr(int64(2))).WithPageSize(ptr(int64(5))))
	require.NoError(t, err)
	require.EqualValues(t, 12, res.XTotalCount)
	require.Contains(t, res.Link, `rel="prev"`)
	require.Contains(t, res.Link, `rel="next"`)
	require.Contains(t, res.Link, "page=3")
	require.Len(t, res.Payload, 5)
	res, err = e.admin.Repository.ListRepositories(ctx, repository.NewListRepositoriesParams().WithProjectName("lib"))
	require.NoError(t, err)
	app := res.Payload[0]
	require.Equal(t, "lib/app", app.Name)
	require.Equal(t, e.lib, app.ProjectID)
	require.EqualValues(t, 3, app.ArtifactCount, "the index, its held child and the image; not the signature")
	require.Positive(t, app.ID)
	require.Equal(t, fx.t0.Add(3*time.Minute), time.Time(app.UpdateTime).UTC())
	require.NotNil(t, app.CreationTime)
}

func testNameQuery(t *testing.T, e *harborEnv, fx appFixture) {
	ctx := context.Background()
	res, err := e.anon.Repository.ListRepositories(ctx, repository.NewListRepositoriesParams().
		WithProjectName("lib").WithQ(ptr("name=~TEAM")))
	require.NoError(t, err)
	require.EqualValues(t, 1, res.XTotalCount)
	require.Empty(t, res.Link)
	require.Equal(t, "lib/team/tool", res.Payload[0].Name)
}

func testDoubleencodedRepositoryName(t *testing.T, e *harborEnv, fx appFixture) {
	ctx := context.Background()
	// Harbor's clients escape "/" themselves; the client escapes again: team%252Ftool on the wire.
	res, err := e.anon.Repository.GetRepository(ctx, repository.NewGetRepositoryParams().
		WithProjectName("lib").WithRepositoryName(url.PathEscape("team/tool")))
	require.NoError(t, err)
	require.Equal(t, "lib/team/tool", res.Payload.Name)
	require.EqualValues(t, 1, res.Payload.ArtifactCount)
}

func testArtifactsWithTagsReferencesAndAccessories(t *testing.T, e *harborEnv, fx appFixture) {
	ctx := context.Background()
	res, err := e.anon.Artifact.ListArtifacts(ctx, artifact.NewListArtifactsParams().WithProjectName("lib").
		WithRepositoryName("app").WithWithAccessory(ptr(true)).WithPageSize(ptr(int64(2))))
	require.NoError(t, err)
	require.EqualValues(t, 3, res.XTotalCount)
	require.Contains(t, res.Link, `rel="next"`)
	require.Len(t, res.Payload, 2)
	image, index := res.Payload[0], res.Payload[1]
	require.Equal(t, fx.img, image.Digest)
	require.Equal(t, "IMAGE", image.Type)
	require.Equal(t, mtOCIConfig, image.MediaType)
	require.Equal(t, mtImage, image.ManifestMediaType)
	require.Equal(t, int64(len(`{"image":2}`)), image.Size)
	require.Equal(t, "lib/app", image.RepositoryName)
	require.Equal(t, e.lib, image.ProjectID)
	require.Equal(t, fx.t0.Add(2*time.Minute), time.Time(image.PushTime).UTC())
	require.Len(t, image.Tags, 2)
	require.Equal(t, []string{"latest", "v2"}, []string{image.Tags[0].Name, image.Tags[1].Name})
	require.Equal(t, image.ID, image.Tags[0].ArtifactID)
	require.Len(t, image.Accessories, 1)
	acc := image.Accessories[0]
	require.Equal(t, fx.sig, acc.Digest)
	require.Equal(t, "signature.cosign", acc.Type)
	require.Equal(t, fx.img, acc.SubjectArtifactDigest)
	require.Equal(t, image.ID, acc.SubjectArtifactID)
	require.Nil(t, image.References)

	require.Equal(t, fx.idx, index.Digest)
	require.Equal(t, mtOCIIndex, index.ManifestMediaType)
	require.Len(t, index.References, 2)
	require.Equal(t, fx.amd, index.References[0].ChildDigest)
	require.Positive(t, index.References[0].ChildID, "held child")
	require.Equal(t, "amd64", index.References[0].Platform.Architecture)
	require.Equal(t, fx.arm, index.References[1].ChildDigest)
	require.Zero(t, index.References[1].ChildID, "child not held")
	require.Equal(t, "v8", index.References[1].Platform.Variant)
	require.Empty(t, index.Accessories)
}

func testArtifactByTagAndByDigestAndItsTags(t *testing.T, e *harborEnv, fx appFixture) {
	ctx := context.Background()
	for _, ref := range []string{"latest", fx.img} {
		res, err := e.anon.Artifact.GetArtifact(ctx, artifact.NewGetArtifactParams().WithProjectName("lib").
			WithRepositoryName("app").WithReference(ref))
		require.NoError(t, err, ref)
		require.Equal(t, fx.img, res.Payload.Digest)
		require.Nil(t, res.Payload.Accessories, "with_accessory defaults to false")
	}
	res, err := e.anon.Artifact.ListTags(ctx, artifact.NewListTagsParams().WithProjectName("lib").
		WithRepositoryName("app").WithReference(fx.img).WithPageSize(ptr(int64(1))))
	require.NoError(t, err)
	require.EqualValues(t, 2, res.XTotalCount)
	require.Contains(t, res.Link, `rel="next"`)
	require.Equal(t, "latest", res.Payload[0].Name)
	_, err = e.anon.Artifact.GetArtifact(ctx, artifact.NewGetArtifactParams().WithProjectName("lib").
		WithRepositoryName("app").WithReference("nope"))
	require.True(t, errors.As(err, new(*artifact.GetArtifactNotFound)), "%v", err)
}

func testAnonymousCallersSeePublicProjectsOnly(t *testing.T, e *harborEnv, fx appFixture) {
	ctx := context.Background()
	_, err := e.anon.Repository.ListRepositories(ctx, repository.NewListRepositoriesParams().WithProjectName("priv"))
	require.True(t, errors.As(err, new(*repository.ListRepositoriesUnauthorized)), "%v", err)
	_, err = e.anon.Artifact.ListArtifacts(ctx, artifact.NewListArtifactsParams().WithProjectName("priv").WithRepositoryName("secret"))
	require.True(t, errors.As(err, new(*artifact.ListArtifactsUnauthorized)), "%v", err)
	res, err := e.admin.Artifact.ListArtifacts(ctx, artifact.NewListArtifactsParams().WithProjectName("priv").WithRepositoryName("secret"))
	require.NoError(t, err)
	require.Len(t, res.Payload, 1)
	_, err = e.anon.Artifact.DeleteArtifact(ctx, artifact.NewDeleteArtifactParams().WithProjectName("lib").
		WithRepositoryName("app").WithReference("v2"))
	require.True(t, errors.As(err, new(*artifact.DeleteArtifactUnauthorized)), "%v", err)
}

func testDeleteArtifactAndRepository(t *testing.T, e *harborEnv, fx appFixture) {
	ctx := context.Background()
	_, err := e.admin.Artifact.DeleteArtifact(ctx, artifact.NewDeleteArtifactParams().WithProjectName("lib").
		WithRepositoryName("app").WithReference("v2"))
	require.NoError(t, err)
	_, err = e.admin.Artifact.GetArtifact(ctx, artifact.NewGetArtifactParams().WithProjectName("lib").
		WithRepositoryName("app").WithReference(fx.img))
	require.True(t, errors.As(err, new(*artifact.GetArtifactNotFound)), "%v", err)
	_, err = e.admin.Repository.DeleteRepository(ctx, repository.NewDeleteRepositoryParams().WithProjectName("lib").
		WithRepositoryName(url.PathEscape("team/tool")))
	require.NoError(t, err)
	_, err = e.admin.Repository.GetRepository(ctx, repository.NewGetRepositoryParams().WithProjectName("lib").
		WithRepositoryName(url.PathEscape("team/tool")))
	require.True(t, errors.As(err, new(*repository.GetRepositoryNotFound)), "%v", err)
}

// TestHarborArtifactJSON checks the wire names Harbor's UI and tools read, and the bad-input answers.
func TestHarborArtifactJSON(t *testing.T) {
	e := newHarborEnv(t)
	e.put(t, e.lib, "lib/app", mtImage, mtOCIConfig, "", `{"a":1}`, time.Time{}, "v1")
	get := func(path string) (int, map[string]json.RawMessage, http.Header) {
		resp, err := http.Get(e.srv.URL + Prefix + path)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		var raw any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&raw))
		if list, ok := raw.([]any); ok && len(list) > 0 {
			raw = list[0]
		}
		b, err := json.Marshal(raw)
		require.NoError(t, err)
		var obj map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(b, &obj))
		return resp.StatusCode, obj, resp.Header
	}
	status, repo, h := get("/projects/lib/repositories")
	require.Equal(t, 200, status)
	require.Equal(t, "1", h.Get("X-Total-Count"))
	for _, k := range []string{"id", "name", "project_id", "artifact_count", "pull_count", "creation_time", "update_time"} {
		require.Contains(t, repo, k)
	}
	status, art, _ := get("/projects/lib/repositories/app/artifacts?with_tag=true&with_accessory=true")
	require.Equal(t, 200, status)
	for _, k := range []string{"id", "type", "media_type", "manifest_media_type", "digest", "size", "push_time",
		"pull_time", "tags", "references", "accessories"} {
		require.Contains(t, art, k)
	}
	var tags []map[string]any
	require.NoError(t, json.Unmarshal(art["tags"], &tags))
	for _, k := range []string{"id", "name", "push_time", "pull_time", "immutable"} {
		require.Contains(t, tags[0], k)
	}
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/projects/lib/repositories?q=tags%3Dx", 400},
		{"/projects/lib/repositories?page_size=0", 400},
		{"/projects/lib/repositories/app/artifacts?with_tag=maybe", 400},
		{"/projects/lib/repositories/app/artifacts/sha256:zz", 400},
		{"/projects/lib/repositories/nope/artifacts", 404},
		{"/projects/nope/repositories", 401},
		{"/projects/lib/repositories/" + strings.Repeat("%252F", 2) + "/artifacts", 400},
	} {
		status, _, _ := get(tc.path)
		require.Equal(t, tc.status, status, tc.path)
	}
}
