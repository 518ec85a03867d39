package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProjectRolesWithRealClients: users created through the API log in with oras and crane. On a
// private project a guest pulls but cannot push, a developer pushes, a user without a membership sees
// nothing.
func TestProjectRolesWithRealClients(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	srv.createProject(t, "team", false)
	const pass = "Passw0rd-e2e"
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	for _, u := range []struct {
		name string
		role int
	}{{"dev", 2}, {"guest", 3}, {"outsider", 0}} {
		body, err := json.Marshal(map[string]string{"username": u.name, "password": pass, "email": u.name + "@example.com"})
		require.NoError(t, err)
		res := srv.do(t, http.MethodPost, "/api/v2.0/users", srv.admin(), jsonHeader, body)
		require.Equal(t, http.StatusCreated, res.Status, "create user %s:\n%s", u.name, res)
		if u.role == 0 {
			continue
		}
		body, err = json.Marshal(map[string]any{"role_id": u.role, "member_user": map[string]string{"username": u.name}})
		require.NoError(t, err)
		res = srv.do(t, http.MethodPost, "/api/v2.0/projects/team/members", srv.admin(), jsonHeader, body)
		require.Equal(t, http.StatusCreated, res.Status, "add member %s:\n%s", u.name, res)
	}
	login := func(user string) *clients {
		c := newClients(t, srv, "oras", "crane")
		r := c.exec(pass, "oras", "login", "--plain-http", "-u", user, "--password-stdin", srv.Host)
		require.NoError(t, r.Err, "oras login as %s:\n%s", user, r)
		r = c.exec(pass, "crane", "auth", "login", srv.Host, "-u", user, "--password-stdin")
		require.NoError(t, r.Err, "crane auth login as %s:\n%s", user, r)
		return c
	}

	dev := login("dev")
	payload := []byte("pushed by a developer\n")
	dev.writeFile("app.txt", payload)
	pushed := dev.orasPush(srv.Host+"/team/app:v1", typeApp, "app.txt:text/plain")

	guest := login("guest")
	guest.must("oras", "pull", "--plain-http", "-o", "out", srv.Host+"/team/app:v1")
	require.Equal(t, payload, guest.readFile(filepath.Join("out", "app.txt")))
	require.Equal(t, pushed.Digest, sha256Digest([]byte(guest.must("crane", "manifest", srv.Host+"/team/app:v1"))))
	guest.writeFile("evil.txt", []byte("a guest's write\n"))
	r := guest.mustFail("oras", "push", "--plain-http", srv.Host+"/team/app:guest", "evil.txt:text/plain")
	t.Logf("guest push, as expected refused:\n%s", r)
	guest.mustFail("crane", "tag", srv.Host+"/team/app:v1", "guest")
	require.Equal(t, []string{"v1"}, guest.tags(srv.Host+"/team/app"), "the guest changed nothing")

	outsider := login("outsider")
	outsider.mustFail("crane", "manifest", srv.Host+"/team/app:v1")
	outsider.mustFail("oras", "pull", "--plain-http", "-o", "out", srv.Host+"/team/app:v1")
}
