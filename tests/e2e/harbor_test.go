package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	httptransport "github.com/go-openapi/runtime/client"
	harbor "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/member"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project_metadata"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/registry"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/robot"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/user"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/stretchr/testify/require"
)

// The Harbor API of the e2e tests goes through Harbor's generated Go client
// (github.com/goharbor/go-client), so that field names and types are those of Harbor's swagger.

// harborClient is Harbor's generated Go client on s's API, as the admin.
func (s *server) harborClient(t *testing.T) *harbor.HarborAPI {
	t.Helper()
	return s.harborAs(t, adminUser, s.AdminPassword)
}

// harborAs is Harbor's generated Go client on s's API with Basic credentials user:password ("" user:
// anonymous), over the server's transport (it trusts serverConfig.tlsCA).
func (s *server) harborAs(t *testing.T, user, password string) *harbor.HarborAPI {
	t.Helper()
	u, err := url.Parse(s.URL + "/api/v2.0")
	require.NoError(t, err)
	cfg := harbor.Config{URL: u, Transport: s.client.Transport}
	if user != "" {
		cfg.AuthInfo = httptransport.BasicAuth(user, password)
	}
	return harbor.New(cfg)
}

// createProject creates a project as the admin.
func (s *server) createProject(t *testing.T, name string, public bool) {
	t.Helper()
	_, err := s.harborClient(t).Project.CreateProject(context.Background(), project.NewCreateProjectParams().
		WithProject(&models.ProjectReq{ProjectName: name, Metadata: &models.ProjectMetadata{Public: strconv.FormatBool(public)}}))
	require.NoError(t, err, "create project %q", name)
}

// createProxyProject creates a public proxy-cache project on the registry endpoint registryID, with the
// Proxy Referrer API switched on (project metadata proxy_referrer_api; off by default) and any extra
// metadata given as key, value pairs. Berth's own metadata keys are not fields of Harbor's
// ProjectMetadata, so they are added with POST /projects/{name}/metadatas.
func (s *server) createProxyProject(t *testing.T, name string, registryID int64, extra ...string) {
	t.Helper()
	hc, ctx := s.harborClient(t), context.Background()
	_, err := hc.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{
		ProjectName: name, RegistryID: &registryID, Metadata: &models.ProjectMetadata{Public: "true"}}))
	require.NoError(t, err, "create proxy project %q", name)
	md := map[string]string{"proxy_referrer_api": "true"}
	for i := 0; i+1 < len(extra); i += 2 {
		md[extra[i]] = extra[i+1]
	}
	_, err = hc.ProjectMetadata.AddProjectMetadatas(ctx, project_metadata.NewAddProjectMetadatasParams().
		WithProjectNameOrID(name).WithMetadata(md))
	require.NoError(t, err, "metadata of proxy project %q", name)
}

// createRegistry registers a "docker-registry" upstream endpoint (Harbor's POST /registries), with
// Basic credentials when auth is not nil, and returns its id.
func (s *server) createRegistry(t *testing.T, name, upstreamURL string, auth *basicAuth) int64 {
	t.Helper()
	reg := &models.Registry{Name: name, Type: "docker-registry", URL: upstreamURL, Insecure: true}
	if auth != nil {
		reg.Credential = &models.RegistryCredential{Type: "basic", AccessKey: auth.user, AccessSecret: auth.password}
	}
	return s.registerUpstream(t, reg)
}

// createTypedRegistry registers an upstream endpoint of type typ (docker-registry, docker-hub, ...)
// without credentials and returns its id.
func (s *server) createTypedRegistry(t *testing.T, name, typ, upstreamURL string) int64 {
	t.Helper()
	return s.registerUpstream(t, &models.Registry{Name: name, Type: typ, URL: upstreamURL, Insecure: true})
}

func (s *server) registerUpstream(t *testing.T, reg *models.Registry) int64 {
	t.Helper()
	res, err := s.harborClient(t).Registry.CreateRegistry(context.Background(), registry.NewCreateRegistryParams().WithRegistry(reg))
	require.NoError(t, err, "create registry %q", reg.Name)
	id, err := strconv.ParseInt(res.Location[strings.LastIndex(res.Location, "/")+1:], 10, 64)
	require.NoError(t, err, "registry id from Location %q", res.Location)
	return id
}

// createUser creates a local user with password as the admin.
func (s *server) createUser(t *testing.T, name, password string) {
	t.Helper()
	_, err := s.harborClient(t).User.CreateUser(context.Background(), user.NewCreateUserParams().WithUserReq(
		&models.UserCreationReq{Username: name, Password: password, Email: name + "@example.com", Realname: name}))
	require.NoError(t, err, "create user %q", name)
}

// addMember makes user a member of project with Harbor's role ID, as the admin.
func (s *server) addMember(t *testing.T, projectName, username string, role int64) {
	t.Helper()
	_, err := s.harborClient(t).Member.CreateProjectMember(context.Background(), member.NewCreateProjectMemberParams().
		WithProjectNameOrID(projectName).WithProjectMember(&models.ProjectMember{RoleID: role, MemberUser: &models.UserEntity{Username: username}}))
	require.NoError(t, err, "add %q to %q as role %d", username, projectName, role)
}

// robotCreds are a robot account's ID, full name and secret, as creating it returned them.
type robotCreds struct {
	ID     int64
	Name   string
	Secret string
}

// robotRequest is a robot of level "system" or "project" that never expires, with repository actions
// on namespace (a project, or "*").
func robotRequest(name, level, namespace string, actions ...string) *models.RobotCreate {
	access := make([]*models.Access, 0, len(actions))
	for _, a := range actions {
		access = append(access, &models.Access{Resource: "repository", Action: a})
	}
	return &models.RobotCreate{Name: name, Level: level, Duration: -1,
		Permissions: []*models.RobotPermission{{Kind: "project", Namespace: namespace, Access: access}}}
}

// createRobotWith creates a robot through hc and returns its credentials or the client's error.
func createRobotWith(hc *harbor.HarborAPI, req *models.RobotCreate) (robotCreds, error) {
	res, err := hc.Robot.CreateRobot(context.Background(), robot.NewCreateRobotParams().WithRobot(req))
	if err != nil {
		return robotCreds{}, fmt.Errorf("create robot %q: %w", req.Name, err)
	}
	return robotCreds{ID: res.Payload.ID, Name: res.Payload.Name, Secret: res.Payload.Secret}, nil
}

// createRobot creates a robot as the admin (see robotRequest).
func (s *server) createRobot(t *testing.T, name, level, namespace string, actions ...string) robotCreds {
	t.Helper()
	c, err := createRobotWith(s.harborClient(t), robotRequest(name, level, namespace, actions...))
	require.NoError(t, err)
	return c
}

// setRobotDisabled disables or enables a robot: GET, then PUT with disable changed, as the admin.
func (s *server) setRobotDisabled(t *testing.T, id int64, disabled bool) {
	t.Helper()
	hc, ctx := s.harborClient(t), context.Background()
	res, err := hc.Robot.GetRobotByID(ctx, robot.NewGetRobotByIDParams().WithRobotID(id))
	require.NoError(t, err)
	rb := res.Payload
	rb.Disable = disabled
	_, err = hc.Robot.UpdateRobot(ctx, robot.NewUpdateRobotParams().WithRobotID(id).WithRobot(rb))
	require.NoError(t, err)
}
