package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	harbor "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	hretention "github.com/goharbor/go-client/pkg/sdk/v2.0/client/retention"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/retention"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// TestRetentionAPI drives /retentions with Harbor's Go client on SQLite: the default policy of a new
// proxy-cache project, update, dry run, run, executions, tasks, log, metadata and delete.
func TestRetentionAPI(t *testing.T) {
	ctx := context.Background()
	store, fs, runner := retentionDeps(t)
	a, e := newAPIOn(t, store, func(d *Deps) { d.Retentions = &Retentions{Store: store, Runner: runner} })
	u := serveAPI(t, a)
	c := harbor.New(harbor.Config{URL: u, AuthInfo: httptransport.BasicAuth(auth.AdminUser, adminPassword)})

	pid, id, got := defaultRetention(t, c, e, store)

	// Three images; the operator changes the policy to keep the latest pushed one.
	t0 := time.Now().Add(-time.Hour)
	for i, tag := range []string{"a", "b", "c"} {
		body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","tag":"` + tag + `"}`)
		d := digest.FromBytes(body)
		_, err := fs.Put(ctx, d, bytes.NewReader(body))
		require.NoError(t, err)
		require.NoError(t, store.PutArtifact(ctx, pid, "cache/app", &meta.Artifact{Digest: d.String(),
			MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(body)), PushTime: t0.Add(time.Duration(i) * time.Minute)}, tag))
	}
	got.Payload.Rules[0].Template = retention.TemplateLatestPushedK
	got.Payload.Rules[0].Params = map[string]any{retention.TemplateLatestPushedK: 1}
	_, err := c.Retention.UpdateRetention(ctx, &hretention.UpdateRetentionParams{ID: id, Policy: got.Payload})
	require.NoError(t, err)

	run := func(dry bool) *models.RetentionExecution {
		_, created, err := c.Retention.TriggerRetentionExecution(ctx, &hretention.TriggerRetentionExecutionParams{ID: id,
			Body: hretention.TriggerRetentionExecutionBody{DryRun: dry}})
		require.NoError(t, err)
		require.NotNil(t, created)
		runner.Wait()
		list, err := c.Retention.ListRetentionExecutions(ctx, &hretention.ListRetentionExecutionsParams{ID: id})
		require.NoError(t, err)
		return list.Payload[0]
	}
	ex := run(true)
	require.True(t, ex.DryRun)
	require.Equal(t, meta.RetentionSucceed, ex.Status)
	require.Equal(t, retention.TriggerManual, ex.Trigger)
	require.NotEmpty(t, ex.EndTime)
	tasks, err := c.Retention.ListRetentionTasks(ctx, &hretention.ListRetentionTasksParams{ID: id, Eid: ex.ID})
	require.NoError(t, err)
	require.Len(t, tasks.Payload, 1)
	require.Equal(t, "cache/app", tasks.Payload[0].Repository)
	require.EqualValues(t, 3, tasks.Payload[0].Total)
	require.EqualValues(t, 1, tasks.Payload[0].Retained)
	log, err := c.Retention.GetRetentionTaskLog(ctx, &hretention.GetRetentionTaskLogParams{ID: id, Eid: ex.ID, Tid: tasks.Payload[0].ID})
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(log.Payload, "REMOVE "), log.Payload)
	arts, _, err := store.ListProjectArtifacts(ctx, pid, "")
	require.NoError(t, err)
	require.Len(t, arts, 3, "a dry run removes nothing")

	ex = run(false)
	require.False(t, ex.DryRun)
	arts, tags, err := store.ListProjectArtifacts(ctx, pid, "")
	require.NoError(t, err)
	require.Len(t, arts, 1)
	require.Equal(t, []string{"c"}, tags[arts[0].ID])
	list, err := c.Retention.ListRetentionExecutions(ctx, &hretention.ListRetentionExecutionsParams{ID: id})
	require.NoError(t, err)
	require.Len(t, list.Payload, 2)

	md, err := c.Retention.GetRentenitionMetadata(ctx, &hretention.GetRentenitionMetadataParams{})
	require.NoError(t, err)
	require.Len(t, md.Payload.Templates, 5)
	require.Equal(t, []string{"repoMatches", "repoExcludes"}, md.Payload.ScopeSelectors[0].Decorations)

	_, err = c.Retention.OperateRetentionExecution(ctx, &hretention.OperateRetentionExecutionParams{ID: id, Eid: ex.ID,
		Body: hretention.OperateRetentionExecutionBody{Action: "stop"}})
	require.Error(t, err, "a finished execution cannot be stopped")

	_, err = c.Retention.DeleteRetention(ctx, &hretention.DeleteRetentionParams{ID: id})
	require.NoError(t, err)
	e.must(req{method: "GET", path: "/api/v2.0/retentions/" + strconv.FormatInt(id, 10)}, 404)
	p, err := c.Project.GetProject(ctx, &project.GetProjectParams{ProjectNameOrID: "cache"})
	require.NoError(t, err)
	require.Nil(t, p.Payload.Metadata.RetentionID)
}

// TestRetentionAPIErrors: bad input is a 400 in Harbor's error shape; unknown IDs are 404.
func TestRetentionAPIErrors(t *testing.T) {
	store, _, runner := retentionDeps(t)
	_, e := newAPIOn(t, store, func(d *Deps) { d.Retentions = &Retentions{Store: store, Runner: runner} })
	pid, err := store.CreateProject(context.Background(), &meta.Project{Name: "lib"})
	require.NoError(t, err)
	policy := func(mut func(p map[string]any)) map[string]any {
		var p map[string]any
		b, _ := json.Marshal(retention.DefaultProxyPolicy(pid))
		require.NoError(t, json.Unmarshal(b, &p))
		mut(p)
		return p
	}
	rule0 := func(p map[string]any) map[string]any { return p["rules"].([]any)[0].(map[string]any) }
	for name, body := range map[string]any{
		"unknown template": policy(func(p map[string]any) { rule0(p)["template"] = "latestNothing" }),
		"negative days":    policy(func(p map[string]any) { rule0(p)["params"] = map[string]any{"nDaysSinceLastPull": -1} }),
		"bad pattern":      policy(func(p map[string]any) { rule0(p)["tag_selectors"].([]any)[0].(map[string]any)["pattern"] = "[" }),
		"bad decoration": policy(func(p map[string]any) {
			rule0(p)["tag_selectors"].([]any)[0].(map[string]any)["decoration"] = "repoMatches"
		}),
		"bad cron": policy(func(p map[string]any) {
			p["trigger"] = map[string]any{"kind": "Schedule", "settings": map[string]any{"cron": "* * *"}}
		}),
		"no such project": policy(func(p map[string]any) { p["scope"] = map[string]any{"level": "project", "ref": 999} }),
		"bad extras":      policy(func(p map[string]any) { rule0(p)["tag_selectors"].([]any)[0].(map[string]any)["extras"] = "{" }),
	} {
		rec := e.must(req{method: "POST", path: "/api/v2.0/retentions", body: body}, 400)
		require.Contains(t, rec.Body.String(), `"code":"BAD_REQUEST"`, name)
	}
	e.must(req{method: "GET", path: "/api/v2.0/retentions/42"}, 404)
	e.must(req{method: "GET", path: "/api/v2.0/retentions/x"}, 400)
	e.must(req{method: "POST", path: "/api/v2.0/retentions/42/executions", body: map[string]any{}}, 404)
	e.must(req{method: "GET", path: "/api/v2.0/retentions/metadatas", user: "anon"}, 401)
}

func serveAPI(t *testing.T, a *API) *url.URL {
	t.Helper()
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL + Prefix)
	require.NoError(t, err)
	return u
}

// retentionDeps opens a SQLite meta store and a blob store of the test's own and a retention runner on
// them, all closed when the test ends.
func retentionDeps(t *testing.T) (meta.Store, *storage.FS, *retention.Service) {
	t.Helper()
	store := openSQLite(t)
	fs, err := storage.NewFS(t.TempDir())
	require.NoError(t, err)
	runner := retention.New(retention.Options{Store: store, Manifests: fs})
	t.Cleanup(runner.Close)
	return store, fs, runner
}

// defaultRetention: a new proxy-cache project gets the 7-day last-pull policy, named by its
// retention_id. It returns the project's ID, the policy's ID and the policy.
func defaultRetention(t *testing.T, c *harbor.HarborAPI, e *env, store meta.Store) (int64, int64, *hretention.GetRetentionOK) {
	t.Helper()
	ctx := context.Background()
	regID, err := store.CreateRegistry(ctx, &meta.Registry{Name: "hub", Type: "docker-registry", URL: "https://up.example"})
	require.NoError(t, err)
	e.must(req{method: "POST", path: "/api/v2.0/projects", body: map[string]any{"project_name": "cache", "registry_id": regID}}, 201)
	p, err := c.Project.GetProject(ctx, &project.GetProjectParams{ProjectNameOrID: "cache"})
	require.NoError(t, err)
	pid := int64(p.Payload.ProjectID)
	require.NotNil(t, p.Payload.Metadata.RetentionID)
	id, err := strconv.ParseInt(*p.Payload.Metadata.RetentionID, 10, 64)
	require.NoError(t, err)
	got, err := c.Retention.GetRetention(ctx, &hretention.GetRetentionParams{ID: id})
	require.NoError(t, err)
	require.Equal(t, id, got.Payload.ID)
	require.Len(t, got.Payload.Rules, 1)
	require.Equal(t, retention.TemplateNDaysSinceLastPull, got.Payload.Rules[0].Template)
	require.Equal(t, "7", fmt.Sprint(got.Payload.Rules[0].Params[retention.TemplateNDaysSinceLastPull]))
	require.Equal(t, "0 0 0 * * *", got.Payload.Trigger.Settings.(map[string]any)["cron"])
	require.Equal(t, pid, got.Payload.Scope.Ref)
	return pid, id, got
}
