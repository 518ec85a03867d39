package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	harbor "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	gcapi "github.com/goharbor/go-client/pkg/sdk/v2.0/client/gc"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/gc"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// gcAPI serves the API with real garbage collection over a SQLite store and returns Harbor's GC
// clients as admin and anonymous.
func gcAPI(t *testing.T) (admin, anon *gcapi.Client, store meta.Store, runner *gc.Runner) {
	t.Helper()
	store = openSQLite(t)
	blobs, err := storage.NewFS(t.TempDir())
	require.NoError(t, err)
	runner = gc.NewRunner(store, gc.NewCollector(store, blobs, time.Hour, nil), time.Minute, slog.New(slog.DiscardHandler))
	t.Cleanup(runner.Close)
	a, _ := newAPIOn(t, store, func(d *Deps) { d.GC = &GCDeps{Store: store, Runner: runner} })
	require.NoError(t, err)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL + Prefix)
	require.NoError(t, err)
	admin = harbor.New(harbor.Config{URL: u, AuthInfo: httptransport.BasicAuth(auth.AdminUser, adminPassword)}).GC
	anon = harbor.New(harbor.Config{URL: u}).GC
	return admin, anon, store, runner
}

// The /system/gc endpoints through Harbor's own Go client: typed calls prove paths, field names and
// status codes.
func TestGCEndpointsHarborClient(t *testing.T) {
	ctx := context.Background()
	admin, anon, store, runner := gcAPI(t)

	_, err := anon.GetGCHistory(ctx, gcapi.NewGetGCHistoryParams())
	require.IsType(t, &gcapi.GetGCHistoryUnauthorized{}, err)
	_, err = anon.CreateGCSchedule(ctx, gcapi.NewCreateGCScheduleParams().WithSchedule(&models.Schedule{Schedule: &models.ScheduleObj{Type: "Manual"}}))
	require.IsType(t, &gcapi.CreateGCScheduleUnauthorized{}, err)

	// Run now (a dry run), then read it back.
	manual := &models.Schedule{Schedule: &models.ScheduleObj{Type: "Manual"},
		Parameters: map[string]any{"delete_untagged": true, "dry_run": true, "workers": 2}}
	created, err := admin.CreateGCSchedule(ctx, gcapi.NewCreateGCScheduleParams().WithSchedule(manual))
	require.NoError(t, err)
	require.Equal(t, Prefix+"/system/gc/1", created.Location)
	runner.Wait()
	hist, err := admin.GetGCHistory(ctx, gcapi.NewGetGCHistoryParams())
	require.NoError(t, err)
	require.EqualValues(t, 1, hist.XTotalCount)
	require.Len(t, hist.Payload, 1)
	h := hist.Payload[0]
	require.Equal(t, "GARBAGE_COLLECTION", h.JobName)
	require.Equal(t, meta.GCKindManual, h.JobKind)
	require.Equal(t, "Success", h.JobStatus)
	require.JSONEq(t, `{"delete_untagged":true,"dry_run":true,"workers":2}`, h.JobParameters)
	one, err := admin.GetGC(ctx, gcapi.NewGetGCParams().WithGCID(1))
	require.NoError(t, err)
	require.Equal(t, h.ID, one.Payload.ID)
	log, err := admin.GetGCLog(ctx, gcapi.NewGetGCLogParams().WithGCID(1))
	require.NoError(t, err)
	require.Contains(t, log.Payload, "dry_run=true")
	_, err = admin.GetGC(ctx, gcapi.NewGetGCParams().WithGCID(99))
	require.IsType(t, &gcapi.GetGCNotFound{}, err)

	// One at a time: while another node holds the lease, a manual run is a 409.
	ok, err := store.AcquireGCLease(ctx, "another node", time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.True(t, ok)
	_, err = admin.CreateGCSchedule(ctx, gcapi.NewCreateGCScheduleParams().WithSchedule(manual))
	require.IsType(t, &gcapi.CreateGCScheduleConflict{}, err)
	require.NoError(t, store.ReleaseGCLease(ctx, "another node"))

	// The schedule.
	got, err := admin.GetGCSchedule(ctx, gcapi.NewGetGCScheduleParams())
	require.NoError(t, err)
	require.Equal(t, "None", got.Payload.Schedule.Type)
	_, err = admin.UpdateGCSchedule(ctx, gcapi.NewUpdateGCScheduleParams().WithSchedule(&models.Schedule{
		Schedule: &models.ScheduleObj{Type: "Daily"}, Parameters: map[string]any{"delete_untagged": true}}))
	require.NoError(t, err)
	got, err = admin.GetGCSchedule(ctx, gcapi.NewGetGCScheduleParams())
	require.NoError(t, err)
	require.Equal(t, "Daily", got.Payload.Schedule.Type)
	require.Equal(t, "0 0 0 * * *", got.Payload.Schedule.Cron)
	require.WithinDuration(t, time.Now(), time.Time(got.Payload.Schedule.NextScheduledTime), 24*time.Hour)
	require.JSONEq(t, `{"delete_untagged":true,"dry_run":false,"workers":0}`, got.Payload.JobParameters)

	for _, bad := range []*models.Schedule{
		{Schedule: &models.ScheduleObj{Type: "Custom", Cron: "every day"}},
		{Schedule: &models.ScheduleObj{Type: "Sometimes"}},
		{Schedule: &models.ScheduleObj{Type: "Manual"}, Parameters: map[string]any{"workers": 9}},
		{Parameters: map[string]any{"workers": 1}},
	} {
		_, err = admin.CreateGCSchedule(ctx, gcapi.NewCreateGCScheduleParams().WithSchedule(bad))
		require.IsType(t, &gcapi.CreateGCScheduleBadRequest{}, err, "%+v", bad)
	}
}

// The log is text/plain; stopping a run this node does not run is a 412.
func TestGCLogAndStop(t *testing.T) {
	ctx := context.Background()
	store := openSQLite(t)
	blobs, err := storage.NewFS(t.TempDir())
	require.NoError(t, err)
	runner := gc.NewRunner(store, gc.NewCollector(store, blobs, time.Hour, nil), time.Minute, slog.New(slog.DiscardHandler))
	_, base := newAPIOn(t, store, func(d *Deps) { d.GC = &GCDeps{Store: store, Runner: runner} })
	e := &meta.GCExecution{Kind: meta.GCKindManual, Status: meta.GCRunning}
	require.NoError(t, store.CreateGCExecution(ctx, e))
	text := "one line\n"
	require.NoError(t, store.UpdateGCExecution(ctx, e.ID, meta.GCSuccess, &text))
	rec := base.must(req{method: http.MethodGet, path: "/api/v2.0/system/gc/1/log"}, http.StatusOK)
	require.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Equal(t, text, rec.Body.String())
	base.must(req{method: http.MethodGet, path: "/api/v2.0/system/gc/2/log"}, http.StatusNotFound)
	base.must(req{method: http.MethodGet, path: "/api/v2.0/system/gc/x"}, http.StatusBadRequest)
	base.must(req{method: http.MethodPut, path: "/api/v2.0/system/gc/1", body: map[string]any{}}, http.StatusPreconditionFailed)
	base.must(req{method: http.MethodGet, path: "/api/v2.0/system/gc/1/log", user: "anon"}, http.StatusUnauthorized)
}
