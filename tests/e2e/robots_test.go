package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// loginAs stores credentials for the server with `oras login` and `crane auth login`.
func (c *clients) loginAs(user, password string) {
	c.t.Helper()
	r := c.exec(password, "oras", "login", "--plain-http", "-u", user, "--password-stdin", c.srv.Host)
	require.NoError(c.t, r.Err, "oras login:\n%s", r)
	r = c.exec(password, "crane", "auth", "login", c.srv.Host, "-u", user, "--password-stdin")
	require.NoError(c.t, r.Err, "crane auth login:\n%s", r)
}

// TestRobotsTokenFlow drives oras, crane and skopeo with robot credentials through the Bearer
// challenge: a system-level robot pushes, attaches and discovers; a project-level pull-only robot of
// project a reads a and nothing else; disabling a robot stops it within a second.
func TestRobotsTokenFlow(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	srv.createProject(t, "a", false)
	srv.createProject(t, "b", false)
	pusher := srv.createRobot(t, "ci", "system", "*", "pull", "push")
	reader := srv.createRobot(t, "reader", "project", "a", "pull")
	require.Equal(t, "robot$a+reader", reader.Name)

	res := srv.do(t, http.MethodGet, "/v2/", nil, nil, nil)
	require.Equal(t, `Bearer realm="`+srv.URL+`/service/token",service="berth"`, res.Header.Get("WWW-Authenticate"))

	ci := newClients(t, srv, "oras", "crane")
	ci.loginAs(pusher.Name, pusher.Secret)
	ci.writeFile("app.txt", []byte("robot pushed\n"))
	ci.writeFile("sbom.json", []byte(`{"sbom":true}`))
	app := ci.orasPush(srv.Host+"/a/app:v1", typeApp, "app.txt:text/plain")
	ci.orasPush(srv.Host+"/b/app:v1", typeApp, "app.txt:text/plain")
	sbom := ci.orasAttach(srv.Host+"/a/app@"+app.Digest, typeSBOM, "sbom.json:application/json")
	require.Equal(t, []string{sbom.Digest}, digests(ci.discover(srv.Host+"/a/app@"+app.Digest, "")))
	require.Equal(t, app.Digest, sha256Digest([]byte(ci.must("crane", "manifest", srv.Host+"/a/app:v1"))))
	ci.must("crane", "copy", srv.Host+"/a/app:v1", srv.Host+"/b/copied:v1")

	ro := newClients(t, srv, "oras", "crane")
	ro.loginAs(reader.Name, reader.Secret)
	require.Equal(t, app.Digest, sha256Digest([]byte(ro.must("crane", "manifest", srv.Host+"/a/app:v1"))))
	ro.must("oras", "pull", "--plain-http", "-o", "out", srv.Host+"/a/app:v1")
	require.Equal(t, []byte("robot pushed\n"), ro.readFile(filepath.Join("out", "app.txt")))
	ro.writeFile("evil.txt", []byte("not allowed\n"))
	r := ro.mustFail("oras", "push", "--plain-http", srv.Host+"/a/app:evil", "evil.txt:text/plain")
	require.Regexp(t, `401|403|nauthorized|denied`, r.Stderr, "pull-only robot pushing:\n%s", r)
	r = ro.mustFail("crane", "manifest", srv.Host+"/b/app:v1")
	require.Regexp(t, `401|403|UNAUTHORIZED|DENIED`, r.Stderr, "pull-only robot reading b:\n%s", r)

	skopeoCopy(t, srv, reader, "a/app:v1", "b/skopeo:v1", false)
	skopeoCopy(t, srv, pusher, "a/app:v1", "b/skopeo:v1", true)

	// The clients went through the token service.
	require.Contains(t, srv.logTail(2000), "/service/token")

	// Disabled: a token issued before is refused within a second; fresh credentials and the token flow
	// are refused too.
	bearer := http.Header{"Authorization": {"Bearer " + srv.robotToken(t, pusher, "repository:a/app:pull")},
		"Accept": {"application/vnd.oci.image.manifest.v1+json"}}
	res = srv.do(t, http.MethodGet, "/v2/a/app/manifests/v1", nil, bearer, nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res)
	srv.setRobotDisabled(t, pusher.ID, true)
	disabled := time.Now()
	for res.Status != http.StatusUnauthorized {
		require.Less(t, time.Since(disabled), time.Second, "a disabled robot's token still works:\n%s", res)
		time.Sleep(20 * time.Millisecond)
		res = srv.do(t, http.MethodGet, "/v2/a/app/manifests/v1", nil, bearer, nil)
	}
	r = ci.mustFail("crane", "manifest", srv.Host+"/a/app:v1")
	require.Regexp(t, `401|UNAUTHORIZED|disabled`, r.Stderr, "disabled robot:\n%s", r)
	// Enabled again: working shortly (each node rechecks a robot's state every 0.5 s; crane adds its own time).
	srv.setRobotDisabled(t, pusher.ID, false)
	enabled := time.Now()
	for r = ci.exec("", "crane", "manifest", srv.Host+"/a/app:v1"); r.Err != nil; r = ci.exec("", "crane", "manifest", srv.Host+"/a/app:v1") {
		require.Less(t, time.Since(enabled), 3*time.Second, "an enabled robot is still refused:\n%s", r)
		time.Sleep(100 * time.Millisecond)
	}
}

// skopeoCopy copies src to dst on srv with skopeo as robot, and checks the outcome.
func skopeoCopy(t *testing.T, srv *server, robot robotCreds, src, dst string, ok bool) {
	t.Helper()
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		missing(t, "skopeo is not installed (apt-get install skopeo)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	creds := robot.Name + ":" + robot.Secret
	cmd := exec.CommandContext(ctx, skopeo, "--insecure-policy", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
		"--src-creds", creds, "--dest-creds", creds, "docker://"+srv.Host+"/"+src, "docker://"+srv.Host+"/"+dst)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if ok {
		require.NoError(t, err, "skopeo copy as %s:\n%s", robot.Name, out)
		return
	}
	require.Error(t, err, "skopeo copy as %s must fail:\n%s", robot.Name, out)
	require.True(t, strings.Contains(string(out), "unauthorized") || strings.Contains(string(out), "denied") ||
		strings.Contains(string(out), "401") || strings.Contains(string(out), "403"), "%s", out)
}

// robotToken asks the token service for scope with the robot's Basic credentials and returns the token.
func (s *server) robotToken(t *testing.T, robot robotCreds, scope string) string {
	t.Helper()
	res := s.do(t, http.MethodGet, "/service/token?service=berth&scope="+url.QueryEscape(scope), &basicAuth{robot.Name, robot.Secret}, nil, nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res)
	var body struct {
		Token string `json:"token"`
	}
	require.NoError(t, json.Unmarshal(res.Body, &body))
	require.NotEmpty(t, body.Token, "%s", res)
	return body.Token
}
