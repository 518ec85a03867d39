package robot_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
	"github.com/berth-registry/berth/src/pkg/robot"
)

// TestMayManageAndGrant checks, through a real Authenticator over a real (SQLite) store, who may
// manage which robots: a system administrator every robot; a projectAdmin of a the robots of a only
// (not b's, not system robots); a maintainer, a developer, a robot and a bearer token none. MayGrant
// refuses access the caller does not hold in the project itself.
func TestMayManageAndGrant(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "berth.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	users := map[string]int64{}
	for _, u := range []string{"root", "owner", "keeper", "dev"} {
		users[u], err = store.CreateUser(ctx, &meta.User{Username: u, PasswordHash: "x", Sysadmin: u == "root"})
		require.NoError(t, err)
	}
	projects := map[string]*meta.Project{}
	for _, name := range []string{"a", "b"} {
		p := &meta.Project{Name: name, Metadata: map[string]string{meta.MetaPublic: "true"}}
		_, err = store.CreateProject(ctx, p)
		require.NoError(t, err)
		projects[name] = p
	}
	for _, m := range []struct {
		user, project string
		role          meta.Role
	}{{"owner", "a", meta.RoleProjectAdmin}, {"owner", "b", meta.RoleDeveloper}, {"keeper", "a", meta.RoleMaintainer}, {"dev", "a", meta.RoleDeveloper}} {
		_, err = store.AddMember(ctx, &meta.Member{ProjectID: projects[m.project].ID, UserID: users[m.user], Role: m.role})
		require.NoError(t, err)
	}
	az := auth.New(store)
	user := func(name string) auth.Principal {
		return auth.Principal{Name: name, UserID: users[name], Admin: name == "root"}
	}
	all := robot.Access{{Kind: robot.KindProject, Namespace: "*", Access: robot.Grantable}}
	a, b := projects["a"], projects["b"]
	for _, tc := range []struct {
		name    string
		who     auth.Principal
		project *meta.Project
		want    *errcode.Code // nil: allowed
	}{
		{"sysadmin, system robots", user("root"), nil, nil},
		{"sysadmin, project robots", user("root"), b, nil},
		{"projectAdmin of a, a's robots", user("owner"), a, nil},
		{"projectAdmin of a, b's robots (developer there)", user("owner"), b, &errcode.ErrDenied},
		{"projectAdmin of a, system robots", user("owner"), nil, &errcode.ErrDenied},
		{"maintainer", user("keeper"), a, &errcode.ErrDenied},
		{"developer", user("dev"), a, &errcode.ErrDenied},
		{"anonymous", auth.Principal{}, a, &errcode.ErrUnauthorized},
		{"robot with every grantable access", auth.Principal{Name: "robot$ci", Robot: true, Limit: all}, a, &errcode.ErrDenied},
		{"bearer token of the admin", auth.Principal{Name: "root", Admin: true, Token: true, Limit: all}, a, &errcode.ErrUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := robot.MayManage(ctx, az, tc.who, tc.project)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.True(t, errcode.IsCode(err, *tc.want), "want %v, got %v", tc.want, err)
		})
	}

	perm := func(actions ...string) []meta.RobotPermission {
		p := meta.RobotPermission{Kind: robot.KindProject, Namespace: "a"}
		for _, act := range actions {
			p.Access = append(p.Access, meta.RobotAccess{Resource: robot.ResourceRepository, Action: act})
		}
		return []meta.RobotPermission{p}
	}
	require.NoError(t, robot.MayGrant(ctx, az, user("owner"), a, perm("pull", "push", "delete")))
	require.NoError(t, robot.MayGrant(ctx, az, user("dev"), a, perm("pull", "push")))
	err = robot.MayGrant(ctx, az, user("dev"), a, perm("pull", "delete"))
	require.True(t, errcode.IsCode(err, errcode.ErrDenied), "a developer holds no delete: %v", err)
	denied := perm("delete")
	denied[0].Access[0].Effect = "deny"
	require.NoError(t, robot.MayGrant(ctx, az, user("dev"), a, denied), "a deny entry grants nothing")
	err = robot.MayGrant(ctx, az, user("owner"), b, []meta.RobotPermission{{Kind: robot.KindProject, Namespace: "b",
		Access: []meta.RobotAccess{{Resource: robot.ResourceArtifact, Action: "delete"}}}})
	require.True(t, errcode.IsCode(err, errcode.ErrDenied), "a developer of b holds no delete there: %v", err)
}
