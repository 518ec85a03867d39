package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	harbor "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/auditlog"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/robot"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/stretchr/testify/require"
)

// TestProjectAdminManagesRobots drives Harbor's robot API through its generated Go client as a
// project administrator: the projectAdmin of a creates, lists, updates, refreshes and deletes a's
// project-level robots; it may not touch b's (where it is a developer) nor system robots, nor list
// every robot; a developer of a manages none, nor does a robot. The robot it made pushes to a through
// the token flow and reads nothing of b; the changes are in the audit log under its name.
func TestProjectAdminManagesRobots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const pass = "Passw0rd-e2e"
	srv := startServer(t, serverConfig{})
	for _, p := range []string{"a", "b"} {
		srv.createProject(t, p, false)
	}
	for _, u := range []string{"owner", "dev"} {
		srv.createUser(t, u, pass)
	}
	srv.addMember(t, "a", "owner", 1)
	srv.addMember(t, "b", "owner", 2)
	srv.addMember(t, "a", "dev", 2)
	owner, dev := srv.harborAs(t, "owner", pass), srv.harborAs(t, "dev", pass)
	sysBot := srv.createRobot(t, "sys", "system", "*", "pull")
	bBot := srv.createRobot(t, "bbot", "project", "b", "pull")

	ci, err := createRobotWith(owner, robotRequest("ci", "project", "a", "pull", "push"))
	require.NoError(t, err, "the projectAdmin of a creates a robot of a")
	require.Equal(t, "robot$a+ci", ci.Name)
	for _, req := range []*models.RobotCreate{
		robotRequest("other", "project", "b", "pull"),
		robotRequest("global", "system", "*", "pull"),
		robotRequest("global", "system", "a", "pull"),
	} {
		_, err = createRobotWith(owner, req)
		require.ErrorContains(t, err, "403", "the projectAdmin of a creates %s robot on %s", req.Level, req.Permissions[0].Namespace)
	}
	_, err = createRobotWith(dev, robotRequest("devbot", "project", "a", "pull"))
	require.ErrorContains(t, err, "403", "a developer creates a robot")

	// Listing: a's robots with Harbor's console query; everything else is for administrators.
	listed := listRobots(t, owner, fmt.Sprintf("Level=project,ProjectID=%d", projectID(t, srv, "a")))
	require.Equal(t, []string{ci.Name}, listed)
	_, err = owner.Robot.ListRobot(ctx, robot.NewListRobotParams())
	require.ErrorContains(t, err, "403")
	_, err = owner.Robot.ListRobot(ctx, robot.NewListRobotParams().WithQ(ptrTo(fmt.Sprintf("Level=project,ProjectID=%d", projectID(t, srv, "b")))))
	require.ErrorContains(t, err, "403")
	_, err = dev.Robot.ListRobot(ctx, robot.NewListRobotParams().WithQ(ptrTo(fmt.Sprintf("Level=project,ProjectID=%d", projectID(t, srv, "a")))))
	require.ErrorContains(t, err, "403")

	// Reading, updating, refreshing: a's robot yes; b's and the system robot no.
	got, err := owner.Robot.GetRobotByID(ctx, robot.NewGetRobotByIDParams().WithRobotID(ci.ID))
	require.NoError(t, err)
	rb := got.Payload
	rb.Description = "pushes a"
	_, err = owner.Robot.UpdateRobot(ctx, robot.NewUpdateRobotParams().WithRobotID(ci.ID).WithRobot(rb))
	require.NoError(t, err)
	rb.Permissions[0].Namespace = "b"
	_, err = owner.Robot.UpdateRobot(ctx, robot.NewUpdateRobotParams().WithRobotID(ci.ID).WithRobot(rb))
	require.Error(t, err, "a project robot's permission moves to another project")
	fresh, err := owner.Robot.RefreshSec(ctx, robot.NewRefreshSecParams().WithRobotID(ci.ID).WithRobotSec(&models.RobotSec{}))
	require.NoError(t, err)
	ci.Secret = fresh.Payload.Secret
	for _, id := range []int64{sysBot.ID, bBot.ID} {
		_, err = owner.Robot.GetRobotByID(ctx, robot.NewGetRobotByIDParams().WithRobotID(id))
		require.ErrorContains(t, err, "403")
		_, err = owner.Robot.RefreshSec(ctx, robot.NewRefreshSecParams().WithRobotID(id).WithRobotSec(&models.RobotSec{}))
		require.ErrorContains(t, err, "403")
		_, err = owner.Robot.DeleteRobot(ctx, robot.NewDeleteRobotParams().WithRobotID(id))
		require.ErrorContains(t, err, "403")
	}

	// The robot works through the token flow, within a only, and cannot manage robots itself.
	c := newClients(t, srv, "oras", "crane")
	c.loginAs(ci.Name, ci.Secret)
	c.pushImage(srv.Host+"/a/app:v1", "pushed by a project admin's robot\n")
	r := c.mustFail("crane", "ls", srv.Host+"/b/app")
	require.Regexp(t, refusedRE, r.Stderr, "%s", r)
	_, err = createRobotWith(srv.harborAs(t, ci.Name, ci.Secret), robotRequest("child", "project", "a", "pull"))
	require.ErrorContains(t, err, "403", "a robot creates a robot")

	_, err = owner.Robot.DeleteRobot(ctx, robot.NewDeleteRobotParams().WithRobotID(ci.ID))
	require.NoError(t, err)
	r = c.mustFail("crane", "manifest", srv.Host+"/a/app:v1")
	require.Regexp(t, refusedRE, r.Stderr, "a deleted robot:\n%s", r)

	// The audit log (read by the admin; written within a second) names the project admin for each change.
	var ops []string
	require.Eventually(t, func() bool {
		logs, err := srv.harborClient(t).Auditlog.ListAuditLogs(ctx, auditlog.NewListAuditLogsParams().
			WithQ(ptrTo("resource_type=robot,username=owner")))
		if err != nil {
			return false
		}
		ops = ops[:0]
		for _, e := range logs.Payload {
			ops = append(ops, e.Resource+" "+e.Operation)
		}
		return len(ops) == 4
	}, 10*time.Second, 100*time.Millisecond, "audit entries of the project admin: %v", ops)
	n := ci.Name
	require.Equal(t, []string{n + " delete", n + " update", n + " update", n + " create"}, ops, "newest first")
}

// listRobots lists robot names through hc with Harbor's q.
func listRobots(t *testing.T, hc *harbor.HarborAPI, q string) []string {
	t.Helper()
	res, err := hc.Robot.ListRobot(context.Background(), robot.NewListRobotParams().WithQ(&q))
	require.NoError(t, err)
	var names []string
	for _, r := range res.Payload {
		names = append(names, r.Name)
	}
	return names
}

// projectID is the ID of a project, read by the admin.
func projectID(t *testing.T, srv *server, name string) int32 {
	t.Helper()
	res, err := srv.harborClient(t).Project.GetProject(context.Background(), project.NewGetProjectParams().WithProjectNameOrID(name))
	require.NoError(t, err)
	return res.Payload.ProjectID
}
