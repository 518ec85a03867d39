package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

func testRobots(t *testing.T, newDB dbFactory) {
	ctx := context.Background()
	s := newStore(t, newDB)
	p := &meta.Project{Name: "team"}
	_, err := s.CreateProject(ctx, p)
	require.NoError(t, err)
	before := time.Now()

	perms := []meta.RobotPermission{{Kind: "project", Namespace: "team", Access: []meta.RobotAccess{{Resource: "repository", Action: "pull"}}}}
	exp := now().Add(24 * time.Hour)
	r := &meta.Robot{Name: "team+ci", Description: "ci", Level: meta.RobotLevelProject, ProjectID: p.ID,
		Permissions: perms, SecretHash: "salt:hash", Duration: 1, ExpiresAt: exp}
	id, err := s.CreateRobot(ctx, r)
	require.NoError(t, err)
	require.Equal(t, id, r.ID)
	requireRecent(t, r.CreationTime, before)

	got, err := s.GetRobot(ctx, id)
	require.NoError(t, err)
	require.Equal(t, r, got)
	got, err = s.GetRobotByName(ctx, "team+ci")
	require.NoError(t, err)
	require.Equal(t, r, got)

	sys := &meta.Robot{Name: "all", Level: meta.RobotLevelSystem, SecretHash: "x", Duration: -1}
	_, err = s.CreateRobot(ctx, sys)
	require.NoError(t, err)
	got, err = s.GetRobot(ctx, sys.ID)
	require.NoError(t, err)
	require.True(t, got.ExpiresAt.IsZero(), "never expires")
	require.Equal(t, []meta.RobotPermission{}, got.Permissions)

	_, err = s.CreateRobot(ctx, &meta.Robot{Name: "all", Level: meta.RobotLevelSystem, SecretHash: "y", Duration: -1})
	require.ErrorIs(t, err, meta.ErrConflict)
	_, err = s.CreateRobot(ctx, &meta.Robot{Name: "x+y", Level: meta.RobotLevelProject, ProjectID: 987654, SecretHash: "y", Duration: -1})
	require.ErrorIs(t, err, meta.ErrNotFound)
	_, err = s.GetRobotByName(ctx, "nope")
	require.ErrorIs(t, err, meta.ErrNotFound)

	list, total, err := s.ListRobots(ctx, meta.RobotFilter{}, 0, 0)
	require.NoError(t, err)
	require.EqualValues(t, 2, total)
	require.Equal(t, []int64{r.ID, sys.ID}, []int64{list[0].ID, list[1].ID})
	list, total, err = s.ListRobots(ctx, meta.RobotFilter{Level: meta.RobotLevelProject, ProjectID: p.ID}, 0, 10)
	require.NoError(t, err)
	require.EqualValues(t, 1, total)
	require.Equal(t, "team+ci", list[0].Name)
	_, total, err = s.ListRobots(ctx, meta.RobotFilter{Name: "AL"}, 0, 10)
	require.NoError(t, err)
	require.EqualValues(t, 1, total)

	r.Disabled, r.Description, r.SecretHash, r.ExpiresAt = true, "off", "salt2:hash2", time.Time{}
	r.Permissions = append(r.Permissions, meta.RobotPermission{Kind: "project", Namespace: "*"})
	require.NoError(t, s.UpdateRobot(ctx, r))
	got, err = s.GetRobot(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, r, got)
	require.ErrorIs(t, s.UpdateRobot(ctx, &meta.Robot{ID: 987654}), meta.ErrNotFound)

	require.NoError(t, s.DeleteRobot(ctx, sys.ID))
	require.ErrorIs(t, s.DeleteRobot(ctx, sys.ID), meta.ErrNotFound)

	// A project-level robot goes with its project.
	require.NoError(t, s.DeleteProject(ctx, p.ID))
	_, err = s.GetRobot(ctx, r.ID)
	require.ErrorIs(t, err, meta.ErrNotFound)
}
