package e2e

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProjectRolesWithRealClients: users created through Harbor's Go client log in with oras and crane. On a
// private project a guest pulls but cannot push, a developer pushes, a user without a membership sees
// nothing.
func TestProjectRolesWithRealClients(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	srv.createProject(t, "team", false)
	const pass = "Passw0rd-e2e"
	for _, u := range []struct {
		name string
		role int64
	}{{"dev", 2}, {"guest", 3}, {"outsider", 0}} {
		srv.createUser(t, u.name, pass)
		if u.role != 0 {
			srv.addMember(t, "team", u.name, u.role)
		}
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
