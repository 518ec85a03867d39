package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	harbor "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/auditlog"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/member"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/user"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
)

// userPassword is the password of every user the access tests create (Harbor's rule: upper, lower, digit).
const userPassword = "Passw0rd-access"

// harborClient returns a Harbor API client for s as user:pass ("" user: anonymous).
func (s *served) harborClient(t *testing.T, username, pass string) *harbor.HarborAPI {
	t.Helper()
	u, err := url.Parse(s.URL + "/api/v2.0")
	require.NoError(t, err)
	cfg := harbor.Config{URL: u}
	if username != "" {
		cfg.AuthInfo = httptransport.BasicAuth(username, pass)
	}
	return harbor.New(cfg)
}

// createUser creates a user through the typed client and returns its ID.
func createUser(t *testing.T, admin *harbor.HarborAPI, name string) int64 {
	t.Helper()
	ctx := context.Background()
	_, err := admin.User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(&models.UserCreationReq{
		Username: name, Password: userPassword, Email: name + "@example.com", Realname: strings.ToUpper(name)}))
	require.NoError(t, err)
	res, err := admin.User.ListUsers(ctx, user.NewListUsersParams().WithQ(ptr("username="+name)))
	require.NoError(t, err)
	require.Len(t, res.Payload, 1)
	return res.Payload[0].UserID
}

func ptr[T any](v T) *T { return &v }

// createProject creates a project through the typed client.
func createProject(t *testing.T, hc *harbor.HarborAPI, name string, public bool) {
	t.Helper()
	_, err := hc.Project.CreateProject(context.Background(), project.NewCreateProjectParams().WithProject(
		&models.ProjectReq{ProjectName: name, Metadata: &models.ProjectMetadata{Public: fmt.Sprint(public)}}))
	require.NoError(t, err, "create project %s", name)
}

// TestUsersMembersAndAuditThroughHarborClient drives users, members and the audit log of a whole Berth
// through the generated Harbor client, so field names and types are Harbor's.
func TestUsersMembersAndAuditThroughHarborClient(t *testing.T) {
	s := startServe(t, nil)
	ctx := context.Background()
	admin := s.harborClient(t, "admin", s.pass)

	// The admin is an ordinary sysadmin user.
	cur, err := admin.User.GetCurrentUserInfo(ctx, user.NewGetCurrentUserInfoParams())
	require.NoError(t, err)
	require.Equal(t, "admin", cur.Payload.Username)
	require.True(t, cur.Payload.SysadminFlag)

	aliceID := createUser(t, admin, "alice")
	got, err := admin.User.GetUser(ctx, user.NewGetUserParams().WithUserID(aliceID))
	require.NoError(t, err)
	require.Equal(t, "alice@example.com", got.Payload.Email)
	require.Equal(t, "ALICE", got.Payload.Realname)
	require.False(t, got.Payload.SysadminFlag)
	_, err = admin.User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(&models.UserCreationReq{Username: "weak", Password: "short"}))
	require.ErrorContains(t, err, "400")
	_, err = admin.User.CreateUser(ctx, user.NewCreateUserParams().WithUserReq(&models.UserCreationReq{Username: "alice", Password: userPassword}))
	require.ErrorContains(t, err, "409")

	alice := s.harborClient(t, "alice", userPassword)
	me, err := alice.User.GetCurrentUserInfo(ctx, user.NewGetCurrentUserInfoParams())
	require.NoError(t, err)
	require.Equal(t, aliceID, me.Payload.UserID)
	_, err = alice.User.ListUsers(ctx, user.NewListUsersParams())
	require.ErrorContains(t, err, "403", "users are listed for sysadmins only")
	found, err := alice.User.SearchUsers(ctx, user.NewSearchUsersParams().WithUsername("adm"))
	require.NoError(t, err)
	require.Len(t, found.Payload, 1)
	require.Equal(t, "admin", found.Payload[0].Username)

	bobID, bob := teamWithBob(t, s, admin, alice)

	// Password change: the old password stops working at once (the login cache is dropped).
	_, err = alice.User.UpdateUserPassword(ctx, user.NewUpdateUserPasswordParams().WithUserID(aliceID).
		WithPassword(&models.PasswordReq{OldPassword: userPassword, NewPassword: "N3w-password"}))
	require.NoError(t, err)
	_, err = alice.User.GetCurrentUserInfo(ctx, user.NewGetCurrentUserInfoParams())
	require.ErrorContains(t, err, "401")
	alice = s.harborClient(t, "alice", "N3w-password")
	_, err = alice.User.GetCurrentUserInfo(ctx, user.NewGetCurrentUserInfoParams())
	require.NoError(t, err)

	// Sysadmin flag, then deletion.
	_, err = admin.User.SetUserSysAdmin(ctx, user.NewSetUserSysAdminParams().WithUserID(bobID).
		WithSysadminFlag(&models.UserSysAdminFlag{SysadminFlag: true}))
	require.NoError(t, err)
	_, err = bob.User.ListUsers(ctx, user.NewListUsersParams())
	require.NoError(t, err, "bob is a sysadmin now")
	_, err = admin.User.DeleteUser(ctx, user.NewDeleteUserParams().WithUserID(bobID))
	require.NoError(t, err)
	_, err = bob.User.GetCurrentUserInfo(ctx, user.NewGetCurrentUserInfoParams())
	require.ErrorContains(t, err, "401")

	// A failed login is audited too.
	_, err = s.harborClient(t, "mallory", "guess").User.GetCurrentUserInfo(ctx, user.NewGetCurrentUserInfoParams())
	require.ErrorContains(t, err, "401")

	requireAuditLog(t, admin, alice)
}

// teamWithBob has alice create the private project "team", in which she, its projectAdmin, makes a new
// user bob a guest, then a developer, and removes him again; bob, who may not manage members, loses
// access at once. It returns bob's user ID and client.
func teamWithBob(t *testing.T, s *served, admin, alice *harbor.HarborAPI) (int64, *harbor.HarborAPI) {
	t.Helper()
	ctx := context.Background()
	_, err := alice.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{
		ProjectName: "team", Metadata: &models.ProjectMetadata{Public: "false"}}))
	require.NoError(t, err)
	bobID := createUser(t, admin, "bob")
	_, err = alice.Member.CreateProjectMember(ctx, member.NewCreateProjectMemberParams().WithProjectNameOrID("team").
		WithXIsResourceName(ptr(true)).WithProjectMember(&models.ProjectMember{RoleID: 3, MemberUser: &models.UserEntity{Username: "bob"}}))
	require.NoError(t, err)
	members, err := alice.Member.ListProjectMembers(ctx, member.NewListProjectMembersParams().WithProjectNameOrID("team"))
	require.NoError(t, err)
	require.Len(t, members.Payload, 2)
	roles := map[string]string{}
	var bobMember int64
	for _, m := range members.Payload {
		roles[m.EntityName] = fmt.Sprintf("%d %s %s", m.RoleID, m.RoleName, m.EntityType)
		if m.EntityID == bobID {
			bobMember = m.ID
		}
	}
	require.Equal(t, map[string]string{"alice": "1 projectAdmin u", "bob": "3 guest u"}, roles)
	_, err = alice.Member.UpdateProjectMember(ctx, member.NewUpdateProjectMemberParams().WithProjectNameOrID("team").
		WithMid(bobMember).WithRole(&models.RoleRequest{RoleID: 2}))
	require.NoError(t, err)
	bm, err := alice.Member.GetProjectMember(ctx, member.NewGetProjectMemberParams().WithProjectNameOrID("team").WithMid(bobMember))
	require.NoError(t, err)
	require.Equal(t, "developer", bm.Payload.RoleName)

	// Bob, a developer now, sees the private project; he may not manage its members.
	bob := s.harborClient(t, "bob", userPassword)
	_, err = bob.Project.GetProject(ctx, project.NewGetProjectParams().WithProjectNameOrID("team"))
	require.NoError(t, err)
	_, err = bob.Member.DeleteProjectMember(ctx, member.NewDeleteProjectMemberParams().WithProjectNameOrID("team").WithMid(bobMember))
	require.ErrorContains(t, err, "403")
	_, err = alice.Member.DeleteProjectMember(ctx, member.NewDeleteProjectMemberParams().WithProjectNameOrID("team").WithMid(bobMember))
	require.NoError(t, err)
	_, err = bob.Project.GetProject(ctx, project.NewGetProjectParams().WithProjectNameOrID("team"))
	require.ErrorContains(t, err, "403", "a removed member loses access at once on this node")
	return bobID, bob
}

// requireAuditLog requires the audit log, written asynchronously, to show what
// TestUsersMembersAndAuditThroughHarborClient did, and checks its queries: operation, username, time
// range, X-Total-Count, and that alice may not read it.
func requireAuditLog(t *testing.T, admin, alice *harbor.HarborAPI) {
	t.Helper()
	ctx := context.Background()
	want := []string{"create project team alice", "create member team:bob alice", "update member team:bob alice",
		"delete member team:bob alice", "create user alice admin", "update user bob admin", "delete user bob admin",
		"login_failed user mallory mallory"}
	require.Eventually(t, func() bool {
		res, err := admin.Auditlog.ListAuditLogs(ctx, auditlog.NewListAuditLogsParams().WithPageSize(ptr(int64(100))))
		require.NoError(t, err)
		have := map[string]bool{}
		for _, e := range res.Payload {
			have[e.Operation+" "+e.ResourceType+" "+e.Resource+" "+e.Username] = true
		}
		for _, w := range want {
			if !have[w] {
				return false
			}
		}
		return true
	}, 10*time.Second, 100*time.Millisecond, "audit entries %v", want)

	// Queries: operation, username, time range; X-Total-Count.
	res, err := admin.Auditlog.ListAuditLogs(ctx, auditlog.NewListAuditLogsParams().
		WithQ(ptr("operation=delete,username=alice")).WithPageSize(ptr(int64(10))))
	require.NoError(t, err)
	require.EqualValues(t, 1, res.XTotalCount)
	require.Equal(t, "team:bob", res.Payload[0].Resource)
	require.False(t, time.Time(res.Payload[0].OpTime).IsZero())
	future := time.Now().Add(time.Hour).UTC().Format("2006-01-02 15:04:05")
	res, err = admin.Auditlog.ListAuditLogs(ctx, auditlog.NewListAuditLogsParams().WithQ(ptr("op_time=["+future+"~]")))
	require.NoError(t, err)
	require.Zero(t, res.XTotalCount)
	_, err = alice.Auditlog.ListAuditLogs(ctx, auditlog.NewListAuditLogsParams())
	require.ErrorContains(t, err, "403")
}

// principals of the matrix, in order; "sysadmin" is a second system administrator made through the API.
var matrixPrincipals = []string{"anonymous", "outsider", "limitedGuest", "guest", "developer", "maintainer", "projectAdmin", "sysadmin"}

// matrixRoles are the Harbor role IDs of the member principals.
var matrixRoles = map[string]int64{"projectAdmin": 1, "developer": 2, "guest": 3, "maintainer": 4, "limitedGuest": 5}

// wantAllowed is the expected matrix, written out independently of src/pkg/auth/permissions.go: who may
// perform each operation on a private project. On a public project everyone may also pull.
var wantAllowed = map[string]string{
	"pull":           "limitedGuest guest developer maintainer projectAdmin sysadmin",
	"push":           "developer maintainer projectAdmin sysadmin",
	"referrer-push":  "developer maintainer projectAdmin sysadmin",
	"tag-delete":     "maintainer projectAdmin sysadmin",
	"delete":         "maintainer projectAdmin sysadmin",
	"metadata-write": "projectAdmin sysadmin",
	"member-read":    "guest developer maintainer projectAdmin sysadmin",
	"member-write":   "projectAdmin sysadmin",
	"project-delete": "projectAdmin sysadmin",
	"robot-manage":   "projectAdmin sysadmin",
}

// matrixEnv is a served Berth with a user per principal, a member of both projects "pub" and "priv"
// with its role, and an image "app:base" in each.
type matrixEnv struct {
	s    *served
	base map[string]ocispec.Descriptor // project -> the base image manifest
	body map[string][]byte
	n    int // makes every manifest pushed unique
}

// TestPermissionMatrix checks every principal x every operation x public/private project through real
// HTTP requests to the registry API and the Harbor API of a whole Berth: allowed operations succeed
// with their success status, denied ones answer 401 (anonymous) or 403.
func TestPermissionMatrix(t *testing.T) {
	s := startServe(t, nil)
	ctx := context.Background()
	admin := s.harborClient(t, "admin", s.pass)
	e := &matrixEnv{s: s, base: map[string]ocispec.Descriptor{}, body: map[string][]byte{}}
	for _, p := range matrixPrincipals[1:] {
		id := createUser(t, admin, strings.ToLower(p))
		if p == "sysadmin" {
			_, err := admin.User.SetUserSysAdmin(ctx, user.NewSetUserSysAdminParams().WithUserID(id).
				WithSysadminFlag(&models.UserSysAdminFlag{SysadminFlag: true}))
			require.NoError(t, err)
		}
	}
	createUser(t, admin, "extra")
	for _, proj := range []string{"pub", "priv"} {
		e.project(t, proj, proj == "pub")
		e.base[proj], e.body[proj] = e.pushManifest(t, "admin", s.pass, proj, "base", nil)
	}
	ops := []string{"pull", "push", "referrer-push", "tag-delete", "delete", "metadata-write", "member-read", "member-write", "project-delete", "robot-manage"}
	require.Len(t, wantAllowed, len(ops))
	for _, proj := range []string{"pub", "priv"} {
		for _, op := range ops {
			for _, who := range matrixPrincipals {
				allowed := strings.Contains(" "+wantAllowed[op]+" ", " "+who+" ") || (proj == "pub" && op == "pull")
				status, ok := e.run(t, who, proj, op)
				switch {
				case allowed:
					require.True(t, ok, "%s %s on %s: want allowed, got %d", who, op, proj, status)
				case who == "anonymous":
					require.Equal(t, http.StatusUnauthorized, status, "%s %s on %s", who, op, proj)
				default:
					require.Equal(t, http.StatusForbidden, status, "%s %s on %s", who, op, proj)
				}
			}
		}
	}
}

// project creates a project as admin and makes every member principal a member with its role.
func (e *matrixEnv) project(t *testing.T, name string, public bool) {
	t.Helper()
	admin := e.s.harborClient(t, "admin", e.s.pass)
	createProject(t, admin, name, public)
	for who, role := range matrixRoles {
		_, err := admin.Member.CreateProjectMember(context.Background(), member.NewCreateProjectMemberParams().WithProjectNameOrID(name).
			WithProjectMember(&models.ProjectMember{RoleID: role, MemberUser: &models.UserEntity{Username: strings.ToLower(who)}}))
		require.NoError(t, err, "%s joins %s", who, name)
	}
}

// run performs op on project as who and returns the status and whether it is the success status.
func (e *matrixEnv) run(t *testing.T, who, proj, op string) (int, bool) {
	t.Helper()
	name, pass := strings.ToLower(who), userPassword
	if who == "anonymous" {
		name = ""
	}
	do := func(method, path string, body []byte, ct string) int {
		return e.do(t, name, pass, method, path, body, ct)
	}
	e.n++
	switch op {
	case "pull":
		st := do(http.MethodGet, "/v2/"+proj+"/app/manifests/base", nil, "")
		return st, st == http.StatusOK
	case "push":
		st := do(http.MethodPost, "/v2/"+proj+"/app/blobs/uploads/?digest="+digest.FromString("{}").String(), []byte("{}"), "application/octet-stream")
		return st, st == http.StatusCreated
	case "referrer-push":
		subject := e.base[proj]
		m := manifestBody(t, fmt.Sprint("ref-", e.n), &subject)
		st := do(http.MethodPut, "/v2/"+proj+"/app/manifests/"+digest.FromBytes(m).String(), m, ocispec.MediaTypeImageManifest)
		return st, st == http.StatusCreated
	case "tag-delete":
		tag := fmt.Sprint("t", e.n)
		require.Equal(t, http.StatusCreated, e.do(t, "admin", e.s.pass, http.MethodPut, "/v2/"+proj+"/app/manifests/"+tag, e.body[proj], ocispec.MediaTypeImageManifest))
		st := do(http.MethodDelete, "/v2/"+proj+"/app/manifests/"+tag, nil, "")
		return st, st == http.StatusAccepted
	case "delete":
		d, _ := e.pushManifest(t, "admin", e.s.pass, proj, "", nil)
		st := do(http.MethodDelete, "/v2/"+proj+"/app/manifests/"+d.Digest.String(), nil, "")
		return st, st == http.StatusAccepted
	case "metadata-write":
		b, _ := json.Marshal(map[string]any{"metadata": map[string]string{"public": fmt.Sprint(proj == "pub")}})
		st := do(http.MethodPut, "/api/v2.0/projects/"+proj, b, "application/json")
		return st, st == http.StatusOK
	case "member-read":
		st := do(http.MethodGet, "/api/v2.0/projects/"+proj+"/members", nil, "")
		return st, st == http.StatusOK
	case "member-write":
		b := []byte(`{"role_id":3,"member_user":{"username":"extra"}}`)
		st := do(http.MethodPost, "/api/v2.0/projects/"+proj+"/members", b, "application/json")
		if st == http.StatusCreated { // undo, so that the next principal can add it again
			var ms []struct {
				ID         int64  `json:"id"`
				EntityName string `json:"entity_name"`
			}
			require.NoError(t, json.Unmarshal(e.s.call(t, http.MethodGet, "/api/v2.0/projects/"+proj+"/members?entityname=extra", nil, http.StatusOK), &ms))
			require.Len(t, ms, 1)
			e.s.call(t, http.MethodDelete, fmt.Sprintf("/api/v2.0/projects/%s/members/%d", proj, ms[0].ID), nil, http.StatusOK)
		}
		return st, st == http.StatusCreated
	case "robot-manage":
		b, _ := json.Marshal(map[string]any{"name": fmt.Sprint("m", e.n), "level": "project", "duration": -1,
			"permissions": []map[string]any{{"kind": "project", "namespace": proj,
				"access": []map[string]string{{"resource": "repository", "action": "pull"}}}}})
		st := do(http.MethodPost, "/api/v2.0/robots", b, "application/json")
		return st, st == http.StatusCreated
	case "project-delete":
		victim := fmt.Sprintf("%s-del%d", proj, e.n)
		e.project(t, victim, proj == "pub")
		st := do(http.MethodDelete, "/api/v2.0/projects/"+victim, nil, "")
		return st, st == http.StatusOK
	}
	t.Fatalf("unknown operation %s", op)
	return 0, false
}

// do sends one request as name:pass ("" name: anonymous) and returns the status.
func (e *matrixEnv) do(t *testing.T, name, pass, method, path string, body []byte, ct string) int {
	t.Helper()
	req, err := http.NewRequest(method, e.s.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	if name != "" {
		req.SetBasicAuth(name, pass)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	return roundTrip(t, req).status
}

// manifestBody is an image manifest over the empty JSON blob, made unique by an annotation.
func manifestBody(t *testing.T, unique string, subject *ocispec.Descriptor) []byte {
	t.Helper()
	empty := []byte("{}")
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: digest.FromBytes(empty), Size: int64(len(empty))}
	m, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example.matrix", Config: desc, Layers: []ocispec.Descriptor{desc}, Subject: subject,
		Annotations: map[string]string{"case": unique}})
	require.NoError(t, err)
	return m
}

// pushManifest pushes the empty blob and a unique manifest into <proj>/app as name, under tag when set.
func (e *matrixEnv) pushManifest(t *testing.T, name, pass, proj, tag string, subject *ocispec.Descriptor) (ocispec.Descriptor, []byte) {
	t.Helper()
	e.n++
	require.Equal(t, http.StatusCreated, e.do(t, name, pass, http.MethodPost,
		"/v2/"+proj+"/app/blobs/uploads/?digest="+digest.FromString("{}").String(), []byte("{}"), "application/octet-stream"))
	m := manifestBody(t, fmt.Sprint("m", e.n), subject)
	ref := tag
	if ref == "" {
		ref = digest.FromBytes(m).String()
	}
	require.Equal(t, http.StatusCreated, e.do(t, name, pass, http.MethodPut, "/v2/"+proj+"/app/manifests/"+ref, m, ocispec.MediaTypeImageManifest))
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m))}, m
}
