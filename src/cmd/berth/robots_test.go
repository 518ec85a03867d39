package main

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/go-openapi/runtime"
	harbor "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/permissions"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/robot"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/stretchr/testify/require"
)

func projectPerm(ns string, actions ...string) []*models.RobotPermission {
	p := &models.RobotPermission{Kind: "project", Namespace: ns}
	for _, a := range actions {
		p.Access = append(p.Access, &models.Access{Resource: "repository", Action: a})
	}
	return []*models.RobotPermission{p}
}

// createRobot creates a robot through the Harbor client and returns its ID, name and secret.
func createRobot(t *testing.T, c *harbor.HarborAPI, rc *models.RobotCreate) (int64, string, string) {
	t.Helper()
	res, err := c.Robot.CreateRobot(context.Background(), &robot.CreateRobotParams{Robot: rc})
	require.NoError(t, err)
	require.NotEmpty(t, res.Payload.Secret)
	return res.Payload.ID, res.Payload.Name, res.Payload.Secret
}

// TestRobotsHarborClient drives /api/v2.0/robots and /permissions through the generated Harbor client.
func TestRobotsHarborClient(t *testing.T) {
	s := startServe(t, nil)
	ctx := context.Background()
	c := s.harborClient(t, "admin", s.pass)
	createProject(t, c, "team", false)

	perms, err := c.Permissions.GetPermissions(ctx, &permissions.GetPermissionsParams{})
	require.NoError(t, err)
	require.Contains(t, perms.Payload.Project, &models.Permission{Resource: "repository", Action: "push"})

	pid, pname, psecret := createRobot(t, c, &models.RobotCreate{Name: "ci", Level: "project", Duration: 7,
		Description: "pull only", Permissions: projectPerm("team", "pull")})
	require.Equal(t, "robot$team+ci", pname)
	sid, sname, _ := createRobot(t, c, &models.RobotCreate{Name: "all", Level: "system", Duration: -1,
		Permissions: projectPerm("*", "pull", "push")})
	require.Equal(t, "robot$all", sname)

	got, err := c.Robot.GetRobotByID(ctx, &robot.GetRobotByIDParams{RobotID: pid})
	require.NoError(t, err)
	r := got.Payload
	require.Equal(t, "project", r.Level)
	require.Equal(t, int64(7), *r.Duration)
	require.Greater(t, r.ExpiresAt, int64(0))
	require.Empty(t, r.Secret, "the secret is shown once")
	require.Equal(t, "team", r.Permissions[0].Namespace)
	require.Equal(t, "pull", r.Permissions[0].Access[0].Action)

	list, err := c.Robot.ListRobot(ctx, &robot.ListRobotParams{})
	require.NoError(t, err)
	require.Len(t, list.Payload, 2)
	q := "Level=system"
	list, err = c.Robot.ListRobot(ctx, &robot.ListRobotParams{Q: &q})
	require.NoError(t, err)
	require.Len(t, list.Payload, 1)
	require.Equal(t, sid, list.Payload[0].ID)
	require.Equal(t, int64(-1), list.Payload[0].ExpiresAt)

	// The robot works, is disabled by PUT, and works again with a refreshed secret once re-enabled.
	requireBasic(t, s, pname, psecret, http.StatusOK)
	r.Disable, r.Description = true, "off"
	_, err = c.Robot.UpdateRobot(ctx, &robot.UpdateRobotParams{RobotID: pid, Robot: r})
	require.NoError(t, err)
	requireBasic(t, s, pname, psecret, http.StatusUnauthorized)
	r.Disable = false
	_, err = c.Robot.UpdateRobot(ctx, &robot.UpdateRobotParams{RobotID: pid, Robot: r})
	require.NoError(t, err)
	ref, err := c.Robot.RefreshSec(ctx, &robot.RefreshSecParams{RobotID: pid, RobotSec: &models.RobotSec{}})
	require.NoError(t, err)
	require.NotEqual(t, psecret, ref.Payload.Secret)
	requireBasic(t, s, pname, psecret, http.StatusUnauthorized)
	requireBasic(t, s, pname, ref.Payload.Secret, http.StatusOK)
	ref, err = c.Robot.RefreshSec(ctx, &robot.RefreshSecParams{RobotID: pid, RobotSec: &models.RobotSec{Secret: "Chosen-Secret-42"}})
	require.NoError(t, err)
	require.Equal(t, "Chosen-Secret-42", ref.Payload.Secret)
	requireBasic(t, s, pname, "Chosen-Secret-42", http.StatusOK)

	requireInvalidRobotsRefused(t, c) // "all" exists
	// A robot cannot manage robots; deleting one makes its credentials fail at once.
	_, err = s.harborClient(t, pname, "Chosen-Secret-42").Robot.ListRobot(ctx, &robot.ListRobotParams{})
	requireCode(t, err, http.StatusForbidden)
	_, err = c.Robot.DeleteRobot(ctx, &robot.DeleteRobotParams{RobotID: pid})
	require.NoError(t, err)
	requireBasic(t, s, pname, "Chosen-Secret-42", http.StatusUnauthorized)
	_, err = c.Robot.GetRobotByID(ctx, &robot.GetRobotByIDParams{RobotID: pid})
	requireCode(t, err, http.StatusNotFound)
}

// requireInvalidRobotsRefused requires that c's server refuses invalid robots with Harbor's error
// statuses: malformed ones, one in a missing project, and a second system robot named "all".
func requireInvalidRobotsRefused(t *testing.T, c *harbor.HarborAPI) {
	t.Helper()
	ctx := context.Background()
	for _, rc := range []*models.RobotCreate{
		{Name: "Bad Name", Level: "system", Permissions: projectPerm("*", "pull")},
		{Name: "x", Level: "galaxy", Permissions: projectPerm("*", "pull")},
		{Name: "x", Level: "project", Permissions: projectPerm("*", "pull")},
		{Name: "x", Level: "system", Permissions: projectPerm("*", "fly")},
		{Name: "x", Level: "system"},
		{Name: "x", Level: "system", Duration: -2, Permissions: projectPerm("*", "pull")},
		{Name: "x", Level: "system", Secret: "weak", Permissions: projectPerm("*", "pull")},
	} {
		_, err := c.Robot.CreateRobot(ctx, &robot.CreateRobotParams{Robot: rc})
		requireCode(t, err, http.StatusBadRequest, "%+v", rc)
	}
	_, err := c.Robot.CreateRobot(ctx, &robot.CreateRobotParams{Robot: &models.RobotCreate{Name: "x", Level: "project", Permissions: projectPerm("nope", "pull")}})
	requireCode(t, err, http.StatusNotFound)
	_, err = c.Robot.CreateRobot(ctx, &robot.CreateRobotParams{Robot: &models.RobotCreate{Name: "all", Level: "system", Permissions: projectPerm("*", "pull")}})
	requireCode(t, err, http.StatusConflict)
}

// requireCode checks that a Harbor client call failed with the status code.
func requireCode(t *testing.T, err error, code int, msgAndArgs ...any) {
	t.Helper()
	var typed interface{ IsCode(int) bool }
	if errors.As(err, &typed) {
		require.True(t, typed.IsCode(code), "want %d, got %v", code, err)
		return
	}
	var apiErr *runtime.APIError
	require.ErrorAs(t, err, &apiErr, msgAndArgs...)
	require.Equal(t, code, apiErr.Code, msgAndArgs...)
}

// requireBasic sends GET /v2/ with Basic credentials and checks the status.
func requireBasic(t *testing.T, s *served, user, pass string, want int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+"/v2/", nil)
	require.NoError(t, err)
	req.SetBasicAuth(user, pass)
	require.Equal(t, want, roundTrip(t, req).status, "GET /v2/ as %s", user)
}
