package sqlstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

func testUsers(t *testing.T, newDB dbFactory) {
	s := newStore(t, newDB)
	ctx := t.Context()
	u := &meta.User{Username: "alice", Email: "a@example.com", PasswordHash: "h1"}
	id, err := s.CreateUser(ctx, u)
	require.NoError(t, err)
	require.NotZero(t, id)
	_, err = s.CreateUser(ctx, &meta.User{Username: "alice", PasswordHash: "x"})
	require.ErrorIs(t, err, meta.ErrConflict)
	_, err = s.CreateUser(ctx, &meta.User{Username: "Bob", PasswordHash: "x", Sysadmin: true})
	require.NoError(t, err)

	got, err := s.GetUserByName(ctx, "alice")
	require.NoError(t, err)
	require.Equal(t, u.ID, got.ID)
	require.Equal(t, "h1", got.PasswordHash)
	_, err = s.GetUserByName(ctx, "ALICE")
	require.ErrorIs(t, err, meta.ErrNotFound)

	got.PasswordHash, got.Sysadmin, got.Realname = "h2", true, "Alice"
	require.NoError(t, s.UpdateUser(ctx, got))
	got, err = s.GetUser(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "h2", got.PasswordHash)
	require.True(t, got.Sysadmin)
	require.Equal(t, "Alice", got.Realname)

	list, total, err := s.ListUsers(ctx, "b", 0, 10)
	require.NoError(t, err)
	require.EqualValues(t, 1, total)
	require.Equal(t, "Bob", list[0].Username)
	list, total, err = s.ListUsers(ctx, "", 1, 1)
	require.NoError(t, err)
	require.EqualValues(t, 2, total)
	require.Len(t, list, 1)

	require.NoError(t, s.DeleteUser(ctx, id))
	require.ErrorIs(t, s.DeleteUser(ctx, id), meta.ErrNotFound)
	require.ErrorIs(t, s.UpdateUser(ctx, got), meta.ErrNotFound)
}

func testMembers(t *testing.T, newDB dbFactory) {
	s := newStore(t, newDB)
	ctx := t.Context()
	pid, err := s.CreateProject(ctx, &meta.Project{Name: "p1", StorageLimit: -1})
	require.NoError(t, err)
	uid, err := s.CreateUser(ctx, &meta.User{Username: "dev", PasswordHash: "x"})
	require.NoError(t, err)
	m := &meta.Member{ProjectID: pid, UserID: uid, Role: meta.RoleDeveloper}
	mid, err := s.AddMember(ctx, m)
	require.NoError(t, err)
	_, err = s.AddMember(ctx, &meta.Member{ProjectID: pid, UserID: uid, Role: meta.RoleGuest})
	require.ErrorIs(t, err, meta.ErrConflict)
	_, err = s.AddMember(ctx, &meta.Member{ProjectID: pid, UserID: uid + 100, Role: meta.RoleGuest})
	require.ErrorIs(t, err, meta.ErrNotFound)

	role, err := s.MemberRole(ctx, pid, uid)
	require.NoError(t, err)
	require.Equal(t, meta.RoleDeveloper, role)
	require.NoError(t, s.UpdateMemberRole(ctx, pid, mid, meta.RoleGuest))
	got, err := s.GetMember(ctx, pid, mid)
	require.NoError(t, err)
	require.Equal(t, meta.RoleGuest, got.Role)
	require.Equal(t, "dev", got.Username)
	_, err = s.GetMember(ctx, pid+1, mid)
	require.ErrorIs(t, err, meta.ErrNotFound)
	list, total, err := s.ListMembers(ctx, pid, "DE", 0, 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, total)
	require.Equal(t, uid, list[0].UserID)

	// Memberships die with the user and with the project.
	require.NoError(t, s.DeleteUser(ctx, uid))
	_, err = s.MemberRole(ctx, pid, uid)
	require.ErrorIs(t, err, meta.ErrNotFound)
	uid2, err := s.CreateUser(ctx, &meta.User{Username: "dev2", PasswordHash: "x"})
	require.NoError(t, err)
	mid2, err := s.AddMember(ctx, &meta.Member{ProjectID: pid, UserID: uid2, Role: meta.RoleMaintainer})
	require.NoError(t, err)
	require.NoError(t, s.DeleteProject(ctx, pid))
	require.Zero(t, countRows(t, s, "project_member"))
	require.ErrorIs(t, s.DeleteMember(ctx, pid, mid2), meta.ErrNotFound)
}

func testAudit(t *testing.T, newDB dbFactory) {
	s := newStore(t, newDB)
	ctx := t.Context()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var entries []meta.AuditEntry
	for i, op := range []string{"create", "delete", "create", "pull"} {
		entries = append(entries, meta.AuditEntry{ProjectID: 1, Resource: "lib/app:v1", ResourceType: "artifact",
			Operation: op, Username: []string{"alice", "bob"}[i%2], OpTime: t0.Add(time.Duration(i) * time.Hour)})
	}
	require.NoError(t, s.AddAuditEntries(ctx, entries))
	all, total, err := s.ListAuditEntries(ctx, meta.AuditQuery{}, 0, 0)
	require.NoError(t, err)
	require.EqualValues(t, 4, total)
	require.Equal(t, "pull", all[0].Operation) // newest first
	require.Equal(t, t0.Add(3*time.Hour), all[0].OpTime)

	got, total, err := s.ListAuditEntries(ctx, meta.AuditQuery{Operation: "create", Username: "ALI"}, 0, 1)
	require.NoError(t, err)
	require.EqualValues(t, 2, total)
	require.Len(t, got, 1)
	_, total, err = s.ListAuditEntries(ctx, meta.AuditQuery{From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour)}, 0, 0)
	require.NoError(t, err)
	require.EqualValues(t, 2, total)

	n, err := s.PurgeAuditEntries(ctx, t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	_, total, err = s.ListAuditEntries(ctx, meta.AuditQuery{}, 0, 0)
	require.NoError(t, err)
	require.EqualValues(t, 2, total)
}

func testRobots(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
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
	requireCreated(t, id, err, r.ID, r.CreationTime, before)

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

// testSessions: console sessions are found by key until they expire, deleted on demand, unique by key,
// and expired ones are removed by the next put.
func testSessions(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	a := &meta.Session{Key: "key-a", User: "admin", Admin: true, CSRF: "csrf-a", Expires: t0.Add(time.Hour)}
	require.NoError(t, s.PutSession(ctx, a, t0))
	got, err := s.GetSession(ctx, "key-a", t0.Add(59*time.Minute))
	require.NoError(t, err)
	require.Equal(t, a, got)
	require.ErrorIs(t, s.PutSession(ctx, &meta.Session{Key: "key-a", User: "x", CSRF: "y", Expires: t0.Add(time.Hour)}, t0), meta.ErrConflict)

	_, err = s.GetSession(ctx, "key-a", t0.Add(time.Hour))
	require.ErrorIs(t, err, meta.ErrNotFound, "expired at its expiry time")
	_, err = s.GetSession(ctx, "absent", t0)
	require.ErrorIs(t, err, meta.ErrNotFound)

	b := &meta.Session{Key: "key-b", User: "dev", CSRF: "csrf-b", Expires: t0.Add(3 * time.Hour)}
	require.NoError(t, s.PutSession(ctx, b, t0.Add(2*time.Hour)))
	require.EqualValues(t, 1, countRows(t, s, "console_session"), "the put removed the expired session")
	got, err = s.GetSession(ctx, "key-b", t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.False(t, got.Admin)
	require.NoError(t, s.DeleteSession(ctx, "key-b"))
	require.NoError(t, s.DeleteSession(ctx, "key-b"), "deleting an absent session")
	_, err = s.GetSession(ctx, "key-b", t0.Add(2*time.Hour))
	require.ErrorIs(t, err, meta.ErrNotFound)
}
