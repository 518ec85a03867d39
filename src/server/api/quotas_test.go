package api

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	httptransport "github.com/go-openapi/runtime/client"
	harbor "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/quota"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/systeminfo"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// TestHarborQuotas drives the quota, summary and volume endpoints with Harbor's generated Go client.
func TestHarborQuotas(t *testing.T) {
	ctx := context.Background()
	store := openSQLite(t)
	a, _ := newAPIOn(t, store, func(d *Deps) {
		d.Usage, d.Volumes = store, func(context.Context) (uint64, uint64, error) { return 1000, 400, nil }
	})
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL + Prefix)
	require.NoError(t, err)
	admin := harbor.New(harbor.Config{URL: u, AuthInfo: httptransport.BasicAuth(auth.AdminUser, adminPassword)})
	anon := harbor.New(harbor.Config{URL: u})

	// A project created with a storage_limit has that hard limit; one without is unlimited (-1).
	_, err = admin.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{
		ProjectName: "small", StorageLimit: ptr(int64(50 << 20)), Metadata: &models.ProjectMetadata{Public: "true"}}))
	require.NoError(t, err)
	_, err = admin.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{ProjectName: "big"}))
	require.NoError(t, err)
	small, err := store.GetProjectByName(ctx, "small")
	require.NoError(t, err)
	require.Equal(t, int64(50<<20), small.StorageLimit)
	require.NoError(t, store.LinkBlob(ctx, small.ID, "small/app", dgst("layer"), 1000))
	require.NoError(t, store.LinkBlob(ctx, small.ID, "small/other", dgst("layer"), 1000))
	require.NoError(t, store.PutArtifact(ctx, small.ID, "small/app", &meta.Artifact{Digest: dgst("m"), MediaType: mtImage, Size: 234}))

	list, err := admin.Quota.ListQuotas(ctx, quota.NewListQuotasParams().WithReference(ptr("project")).
		WithReferenceID(ptr(itoa(small.ID))))
	require.NoError(t, err)
	require.EqualValues(t, 1, list.XTotalCount)
	q := list.Payload[0]
	require.Equal(t, small.ID, q.ID)
	require.Equal(t, models.ResourceList{"storage": 50 << 20}, q.Hard)
	require.Equal(t, models.ResourceList{"storage": 1234}, q.Used)
	ref, ok := q.Ref.(map[string]any)
	require.True(t, ok, "%T", q.Ref)
	require.Equal(t, "small", ref["name"])
	require.Equal(t, itoa(small.ID), fmt.Sprint(ref["id"]))
	require.Equal(t, auth.AdminUser, ref["owner_name"])

	all, err := admin.Quota.ListQuotas(ctx, quota.NewListQuotasParams().WithSort(ptr("-used.storage")))
	require.NoError(t, err)
	require.EqualValues(t, 2, all.XTotalCount)
	require.Equal(t, "small", all.Payload[0].Ref.(map[string]any)["name"])
	require.Equal(t, models.ResourceList{"storage": -1}, all.Payload[1].Hard)
	none, err := admin.Quota.ListQuotas(ctx, quota.NewListQuotasParams().WithReference(ptr("user")))
	require.NoError(t, err)
	require.Empty(t, none.Payload)

	// PUT sets the project's storage_limit; GET reads it back.
	_, err = admin.Quota.UpdateQuota(ctx, quota.NewUpdateQuotaParams().WithID(small.ID).
		WithHard(&models.QuotaUpdateReq{Hard: models.ResourceList{"storage": 2000}}))
	require.NoError(t, err)
	got, err := admin.Quota.GetQuota(ctx, quota.NewGetQuotaParams().WithID(small.ID))
	require.NoError(t, err)
	require.Equal(t, models.ResourceList{"storage": 2000}, got.Payload.Hard)
	small, err = store.GetProject(ctx, small.ID)
	require.NoError(t, err)
	require.Equal(t, int64(2000), small.StorageLimit)

	// The summary: quota, repository count; anonymous callers may read a public project's.
	sum, err := anon.Project.GetProjectSummary(ctx, project.NewGetProjectSummaryParams().WithProjectNameOrID("small"))
	require.NoError(t, err)
	require.EqualValues(t, 2, sum.Payload.RepoCount)
	require.Equal(t, models.ResourceList{"storage": 2000}, sum.Payload.Quota.Hard)
	require.Equal(t, models.ResourceList{"storage": 1234}, sum.Payload.Quota.Used)
	require.Nil(t, sum.Payload.Registry)
	_, err = anon.Project.GetProjectSummary(ctx, project.NewGetProjectSummaryParams().WithProjectNameOrID("big"))
	require.Error(t, err, "a private project's summary is not for anonymous callers")

	vol, err := admin.Systeminfo.GetVolumes(ctx, systeminfo.NewGetVolumesParams())
	require.NoError(t, err)
	require.Equal(t, []*models.Storage{{Total: 1000, Free: 400}}, vol.Payload.Storage)
	_, err = anon.Systeminfo.GetVolumes(ctx, systeminfo.NewGetVolumesParams())
	require.Error(t, err)

	checkQuotaErrors(t, &env{t: t, api: a, bodies: &bytes.Buffer{}}, small.ID)
}

// checkQuotaErrors: bad input answers 400 or 404 in Harbor's error shape.
func checkQuotaErrors(t *testing.T, e *env, smallID int64) {
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{http.MethodPut, "/quotas/" + itoa(smallID), `{"hard":{"storage":0}}`, http.StatusBadRequest},
		{http.MethodPut, "/quotas/" + itoa(smallID), `{"hard":{"storage":-2}}`, http.StatusBadRequest},
		{http.MethodPut, "/quotas/" + itoa(smallID), `{"hard":{"count":5}}`, http.StatusBadRequest},
		{http.MethodPut, "/quotas/" + itoa(smallID), `{"hard":{}}`, http.StatusBadRequest},
		{http.MethodGet, "/quotas/999999", "", http.StatusNotFound},
		{http.MethodGet, "/quotas/abc", "", http.StatusBadRequest},
		{http.MethodGet, "/quotas?reference_id=x", "", http.StatusBadRequest},
		{http.MethodGet, "/quotas?sort=name", "", http.StatusBadRequest},
		{http.MethodGet, "/projects/nope/summary", "", http.StatusNotFound},
	} {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		w := e.do(req{method: tc.method, path: Prefix + tc.path, body: body})
		require.Equal(t, tc.status, w.Code, "%s %s: %s", tc.method, tc.path, w.Body)
		require.NotEmpty(t, errCode(t, w))
	}
}

// TestSummaryOfProxyProject: a proxy-cache project's summary names its registry (secret masked).
func TestSummaryOfProxyProject(t *testing.T) {
	e := newSQLiteEnvWithUsage(t)
	reg := e.createRegistry("hub", "http://127.0.0.1:1", "s3cret")
	e.createProject(map[string]any{"project_name": "cache", "registry_id": idOf(t, reg), "storage_limit": 1 << 20})
	w := e.must(req{method: http.MethodGet, path: Prefix + "/projects/cache/summary"}, http.StatusOK)
	s := decode[models.ProjectSummary](t, w)
	require.NotNil(t, s.Registry)
	require.Equal(t, "hub", s.Registry.Name)
	require.Equal(t, maskedSecret, s.Registry.Credential.AccessSecret)
	require.Equal(t, models.ResourceList{"storage": 1 << 20}, s.Quota.Hard)
	require.Equal(t, models.ResourceList{"storage": 0}, s.Quota.Used)
}

func dgst(s string) string { return digest.FromString(s).String() }

// newSQLiteEnvWithUsage is newSQLiteEnv with the quota endpoints served.
func newSQLiteEnvWithUsage(t *testing.T) *env {
	e := newSQLiteEnv(t)
	store, ok := e.store.(meta.Store)
	require.True(t, ok)
	var err error
	e.api, err = New(Deps{Projects: store, Registries: store, Repositories: store, Box: e.box,
		Auth: auth.NewAuthenticator(adminPassword), Pinger: e.pinger, Usage: store, Log: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return e
}
