package gc_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/gc"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore/sqltest"
)

// One run at a time across runners sharing a database; each run is recorded with its log.
func TestRunnerOneAtATime(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.upload("a", []byte("garbage"))
		e.clock.Set(time.Now().Add(2 * time.Hour))
		r1 := gc.NewRunner(e.store, e.coll, time.Minute, slog.New(slog.DiscardHandler))
		r2 := gc.NewRunner(e.store, e.coll, time.Minute, slog.New(slog.DiscardHandler))
		ex, err := r1.Start(ctx, meta.GCKindManual, gc.Params{})
		require.NoError(t, err)
		_, err = r2.Start(ctx, meta.GCKindManual, gc.Params{})
		require.ErrorIs(t, err, gc.ErrRunning)
		r1.Wait()
		got, err := e.store.GetGCExecution(ctx, ex.ID)
		require.NoError(t, err)
		require.Equal(t, meta.GCSuccess, got.Status)
		log, err := e.store.GCExecutionLog(ctx, ex.ID)
		require.NoError(t, err)
		require.Contains(t, log, "deleted blob")
		require.ErrorIs(t, r1.Stop(ex.ID), gc.ErrNotRunningHere)
		// Released: the other runner may go now.
		ex2, err := r2.Start(ctx, meta.GCKindManual, gc.Params{DryRun: true})
		require.NoError(t, err)
		r2.Wait()
		got, err = e.store.GetGCExecution(ctx, ex2.ID)
		require.NoError(t, err)
		require.Equal(t, meta.GCSuccess, got.Status)
		require.JSONEq(t, `{"delete_untagged":false,"dry_run":true,"workers":0}`, got.Parameters)
	})
}

// Two nodes' schedulers start the scheduled runs (each due time is claimed by one of them: ClaimGCFire,
// tested in sqlstore) with the schedule's parameters.
func TestScheduleFiresOnce(t *testing.T) {
	e := newEnv(t, sqltest.SQLite(t), nil)
	ctx := context.Background()
	require.NoError(t, e.store.PutGCSchedule(ctx, &meta.GCSchedule{Type: gc.ScheduleCustom, Cron: "* * * * * *", Parameters: `{"dry_run":true}`}))
	r1 := gc.NewRunner(e.store, e.coll, time.Minute, slog.New(slog.DiscardHandler))
	r2 := gc.NewRunner(e.store, e.coll, time.Minute, slog.New(slog.DiscardHandler))
	ctx1, cancel := context.WithCancel(ctx)
	go r1.Schedule(ctx1, 200*time.Millisecond)
	go r2.Schedule(ctx1, 200*time.Millisecond)
	require.Eventually(t, func() bool {
		_, n, err := e.store.ListGCExecutions(ctx, 0, 10)
		return err == nil && n >= 1
	}, 10*time.Second, 50*time.Millisecond)
	cancel()
	r1.Wait()
	r2.Wait()
	list, _, err := e.store.ListGCExecutions(ctx, 0, 100)
	require.NoError(t, err)
	for _, x := range list {
		require.Equal(t, meta.GCKindSchedule, x.Kind)
		require.JSONEq(t, `{"delete_untagged":false,"dry_run":true,"workers":0}`, x.Parameters)
	}
}
