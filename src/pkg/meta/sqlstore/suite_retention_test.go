package sqlstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

func testRecordPulls(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	a := manifest("a", 1)
	b := manifest("b", 1)
	push(t, s, pid, "library/app", a, "")
	push(t, s, pid, "library/app", b, "")
	push(t, s, pid, "library/other", a, "")
	t1 := time.Date(2025, 3, 4, 5, 6, 7, 891234000, time.UTC)

	require.NoError(t, s.RecordPulls(ctx, nil))
	require.NoError(t, s.RecordPulls(ctx, []meta.Pull{
		{Repository: "library/app", Digest: a.Digest, Time: t1, Count: 3},
		{Repository: "library/app", Digest: b.Digest, Time: t1.Add(time.Hour), Count: 1},
		{Repository: "library/other", Digest: a.Digest, Time: t1, Count: 2},
		{Repository: "library/app", Digest: dg("gone"), Time: t1, Count: 5}, // no artifact: time ignored, count kept
		{Repository: "library/none", Digest: a.Digest, Time: t1, Count: 1},  // no repository: ignored
	}))
	// An older batch (another node's, reordered) does not move a pull time back; counts add up.
	require.NoError(t, s.RecordPulls(ctx, []meta.Pull{{Repository: "library/app", Digest: b.Digest, Time: t1, Count: 1}}))

	pulled := func(repo, d string) time.Time {
		got, err := s.GetArtifact(ctx, repo, d)
		require.NoError(t, err)
		return got.PullTime
	}
	require.Equal(t, t1, pulled("library/app", a.Digest))
	require.Equal(t, t1.Add(time.Hour), pulled("library/app", b.Digest))
	require.Equal(t, t1, pulled("library/other", a.Digest))
	for repo, want := range map[string]int64{"library/app": 10, "library/other": 2} {
		r, err := s.GetRepository(ctx, repo)
		require.NoError(t, err)
		require.Equal(t, want, r.PullCount, repo)
	}

	// More than one statement's worth of rows.
	many := make([]meta.Pull, 0, 1200)
	for i := range 1200 {
		many = append(many, meta.Pull{Repository: "library/app", Digest: dg(fmt.Sprint(i)), Time: t1, Count: 1})
	}
	many = append(many, meta.Pull{Repository: "library/app", Digest: a.Digest, Time: t1.Add(2 * time.Hour), Count: 1})
	require.NoError(t, s.RecordPulls(ctx, many))
	require.Equal(t, t1.Add(2*time.Hour), pulled("library/app", a.Digest))
	r, err := s.GetRepository(ctx, "library/app")
	require.NoError(t, err)
	require.Equal(t, int64(1211), r.PullCount)
}

func testListProjectArtifacts(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	other := project(t, s, "other")
	a := &meta.Artifact{Digest: dg("a"), MediaType: mtManifest, Size: 1, Origin: meta.OriginPulled}
	sig := &meta.Artifact{Digest: dg("sig"), MediaType: mtManifest, Size: 1, Subject: dg("a"), Origin: meta.OriginPushed}
	push(t, s, pid, "library/b", a, "v2", "v1")
	push(t, s, pid, "library/b", sig)
	push(t, s, pid, "library/a", manifest("x", 1))
	push(t, s, other, "other/a", manifest("y", 1), "t")

	arts, tags, err := s.ListProjectArtifacts(ctx, pid, "")
	require.NoError(t, err)
	require.Len(t, arts, 3)
	require.Equal(t, []string{"library/a", "library/b", "library/b"}, []string{arts[0].Repository, arts[1].Repository, arts[2].Repository})
	require.Equal(t, []string{dg("x"), dg("a"), dg("sig")}, []string{arts[0].Digest, arts[1].Digest, arts[2].Digest})
	require.Equal(t, dg("a"), arts[2].Subject)
	require.Equal(t, meta.OriginPushed, arts[2].Origin)
	require.Equal(t, map[int64][]string{arts[1].ID: {"v1", "v2"}}, tags)

	arts, tags, err = s.ListProjectArtifacts(ctx, pid, "library/a")
	require.NoError(t, err)
	require.Len(t, arts, 1)
	require.Empty(t, tags)
}

func testRetentionPolicies(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	p := &meta.RetentionPolicy{ProjectID: pid, Policy: `{"rules":[]}`}
	id, err := s.CreateRetentionPolicy(ctx, p)
	require.NoError(t, err)
	_, err = s.CreateRetentionPolicy(ctx, &meta.RetentionPolicy{ProjectID: 999, Policy: `{}`})
	require.ErrorIs(t, err, meta.ErrNotFound)
	got, err := s.GetRetentionPolicy(ctx, id)
	require.NoError(t, err)
	require.Equal(t, `{"rules":[]}`, got.Policy)
	got.Policy = `{"rules":[{}]}`
	require.NoError(t, s.UpdateRetentionPolicy(ctx, got))
	all, err := s.ListRetentionPolicies(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Equal(t, `{"rules":[{}]}`, all[0].Policy)
	require.ErrorIs(t, s.UpdateRetentionPolicy(ctx, &meta.RetentionPolicy{ID: 999, ProjectID: pid}), meta.ErrNotFound)
	require.NoError(t, s.DeleteRetentionPolicy(ctx, id))
	require.ErrorIs(t, s.DeleteRetentionPolicy(ctx, id), meta.ErrNotFound)
	_, err = s.GetRetentionPolicy(ctx, id)
	require.ErrorIs(t, err, meta.ErrNotFound)
}

func testRetentionExecutions(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	id, err := s.CreateRetentionPolicy(ctx, &meta.RetentionPolicy{ProjectID: pid, Policy: `{}`})
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	// Racing starts (several nodes): exactly one wins.
	var wg sync.WaitGroup
	wins := make(chan int64, 8)
	for range 8 {
		wg.Go(func() {
			e := &meta.RetentionExecution{PolicyID: id, Trigger: "MANUAL", StartTime: t0}
			if err := s.StartRetentionExecution(ctx, e, t0.Add(-time.Hour)); err == nil {
				wins <- e.ID
			} else {
				require.ErrorIs(t, err, meta.ErrConflict)
			}
		})
	}
	wg.Wait()
	close(wins)
	require.Len(t, wins, 1)
	first := <-wins

	st, err := s.HeartbeatRetentionExecution(ctx, first, t0.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, meta.RetentionRunning, st)
	require.NoError(t, s.StopRetentionExecution(ctx, first))
	st, err = s.HeartbeatRetentionExecution(ctx, first, t0.Add(2*time.Minute))
	require.NoError(t, err)
	require.Equal(t, meta.RetentionStopping, st)
	// Still stopping: a new start conflicts until the heartbeat is stale.
	e2 := &meta.RetentionExecution{PolicyID: id, Trigger: "MANUAL", StartTime: t0.Add(3 * time.Minute)}
	require.ErrorIs(t, s.StartRetentionExecution(ctx, e2, t0), meta.ErrConflict)
	require.NoError(t, s.StartRetentionExecution(ctx, e2, t0.Add(3*time.Minute))) // the first one's node died
	old, err := s.GetRetentionExecution(ctx, first)
	require.NoError(t, err)
	require.Equal(t, meta.RetentionError, old.Status)
	require.ErrorIs(t, s.StopRetentionExecution(ctx, first), meta.ErrNotFound)

	task := &meta.RetentionTask{ExecutionID: e2.ID, Repository: "library/app", Status: meta.RetentionSucceed,
		Total: 3, Retained: 1, Log: "REMOVE x\n", StartTime: t0, EndTime: t0.Add(time.Second)}
	require.NoError(t, s.AddRetentionTask(ctx, task))
	require.NoError(t, s.FinishRetentionExecution(ctx, e2.ID, meta.RetentionSucceed, t0.Add(4*time.Minute)))

	// A scheduled slot runs once.
	slot := t0.Add(time.Hour)
	e3 := &meta.RetentionExecution{PolicyID: id, Trigger: "SCHEDULE", Slot: slot, StartTime: slot}
	require.NoError(t, s.StartRetentionExecution(ctx, e3, slot.Add(-time.Hour)))
	require.NoError(t, s.FinishRetentionExecution(ctx, e3.ID, meta.RetentionSucceed, slot))
	require.ErrorIs(t, s.StartRetentionExecution(ctx, &meta.RetentionExecution{PolicyID: id, Trigger: "SCHEDULE", Slot: slot, StartTime: slot},
		slot.Add(-time.Hour)), meta.ErrConflict)

	list, total, err := s.ListRetentionExecutions(ctx, id, 0, 2)
	require.NoError(t, err)
	require.EqualValues(t, 3, total)
	require.Equal(t, []int64{e3.ID, e2.ID}, []int64{list[0].ID, list[1].ID})
	require.Equal(t, slot, list[0].Slot)
	require.Equal(t, t0.Add(4*time.Minute), list[1].EndTime)
	tasks, n, err := s.ListRetentionTasks(ctx, e2.ID, 0, 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Equal(t, *task, *tasks[0])
	got, err := s.GetRetentionTask(ctx, task.ID)
	require.NoError(t, err)
	require.Equal(t, "REMOVE x\n", got.Log)

	require.NoError(t, s.DeleteRetentionPolicy(ctx, id)) // executions and tasks go with it
	require.Zero(t, countRows(t, s, "retention_task"))
}
