package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// refusedRE matches what registry clients print when the registry refuses their credentials or scope.
const refusedRE = `401|403|(?i:unauthori[sz]ed|denied|forbidden)`

// signingRobots starts a Berth with a private project a holding one image pushed by the admin, and
// creates a project-level robot of a that may pull and push (the signer) and one that may only pull.
// It returns the server, the image's reference by digest and both robots.
func signingRobots(t *testing.T) (srv *server, subject string, signer, reader robotCreds) {
	t.Helper()
	srv = startServer(t, serverConfig{})
	srv.createProject(t, "a", false)
	admin := newClients(t, srv, "crane")
	admin.loginCrane()
	dig := admin.pushImage(srv.Host+"/a/app:v1", "signed by a robot\n")
	signer = srv.createRobot(t, "signer", "project", "a", "pull", "push")
	reader = srv.createRobot(t, "verifier", "project", "a", "pull")
	return srv, srv.Host + "/a/app@" + dig, signer, reader
}

// requireTokenFlow checks that the server issued tokens since the log held before lines.
func requireTokenFlow(t *testing.T, srv *server, before string) {
	t.Helper()
	// The server's log reaches its file shortly after the request: wait for it a little.
	require.Eventually(t, func() bool {
		return strings.Contains(strings.TrimPrefix(srv.logTail(100000), before), "path=/service/token")
	}, 5*time.Second, 20*time.Millisecond, "the client did not go through the token service")
}

// TestRobotsCosignThroughTokenFlow: a project-level robot with push on a signs an image of private
// project a with cosign (offline key) through the Bearer challenge and the token service, and the
// signature verifies; a pull-only robot verifies it but its own signature is refused.
func TestRobotsCosignThroughTokenFlow(t *testing.T) {
	t.Parallel()
	srv, subject, signer, reader := signingRobots(t)

	sc := newClients(t, srv, "oras", "crane", "cosign")
	sc.loginAs(signer.Name, signer.Secret)
	sc.must("cosign", "generate-key-pair")
	before := srv.logTail(100000)
	sc.must("cosign", "sign", "--key", "cosign.key", "--allow-http-registry",
		"--use-signing-config=false", "--tlog-upload=false", "-y", subject)
	requireTokenFlow(t, srv, before)
	verify := []string{"verify", "--key", "cosign.pub", "--allow-http-registry", "--insecure-ignore-tlog=true", "--output", "json", subject}
	var verified []json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(sc.must("cosign", verify...)), &verified))
	require.Len(t, verified, 1, "the signer's own verify")

	rc := newClients(t, srv, "oras", "crane", "cosign")
	rc.loginAs(reader.Name, reader.Secret)
	rc.writeFile("cosign.pub", sc.readFile("cosign.pub"))
	out := rc.must("cosign", verify...)
	require.NoError(t, json.Unmarshal([]byte(out), &verified))
	require.Len(t, verified, 1, "the pull-only robot verifies:\n%s", out)

	rc.must("cosign", "generate-key-pair", "--output-key-prefix", "mine")
	r := rc.mustFail("cosign", "sign", "--key", "mine.key", "--allow-http-registry",
		"--use-signing-config=false", "--tlog-upload=false", "-y", subject)
	require.Regexp(t, refusedRE, r.Stderr, "a pull-only robot signing:\n%s", r)
	t.Logf("a pull-only robot signing, as expected refused:\n%s", r)
	require.Len(t, rc.discover(subject, typeCosignBundle), 1, "only the signer's bundle is stored")
}

// TestRobotsNotationThroughTokenFlow: the same with notation (test certificate, strict trust policy):
// the robot with push signs, the pull-only robot trusts the signer's certificate and verifies, and its
// own signature is refused.
func TestRobotsNotationThroughTokenFlow(t *testing.T) {
	t.Parallel()
	toolsDir(t, "oras", "crane", "notation")
	srv, subject, signer, reader := signingRobots(t)

	sc := newClients(t, srv, "oras", "crane", "notation")
	sc.loginAs(signer.Name, signer.Secret)
	sc.loginNotationAs(signer.Name, signer.Secret)
	sc.setUpNotation()
	before := srv.logTail(100000)
	sc.must("notation", "sign", "--insecure-registry", "--force-referrers-tag=false", subject)
	requireTokenFlow(t, srv, before)
	sc.must("notation", "verify", "--insecure-registry", subject)

	rc := newClients(t, srv, "oras", "crane", "notation")
	rc.loginAs(reader.Name, reader.Secret)
	rc.loginNotationAs(reader.Name, reader.Secret)
	rc.writeFile("signer.crt", sc.readFile(filepath.Join("..", ".config", "notation", "localkeys", "test.crt")))
	rc.must("notation", "cert", "add", "--type", "ca", "--store", "test", "signer.crt")
	rc.writeFile("trustpolicy.json", []byte(notationTrustPolicy))
	rc.must("notation", "policy", "import", "--force", "trustpolicy.json")
	rc.must("notation", "verify", "--insecure-registry", subject)

	rc.must("notation", "cert", "generate-test", "--default", "mine")
	r := rc.mustFail("notation", "sign", "--insecure-registry", "--force-referrers-tag=false", subject)
	require.Regexp(t, refusedRE, r.Stderr, "a pull-only robot signing:\n%s", r)
	t.Logf("a pull-only robot signing, as expected refused:\n%s", r)
	require.Len(t, rc.discover(subject, typeNotation), 1, "only the signer's signature is stored")
}

// loginNotationAs runs `notation login` as user (after loginAs: without a native credential store
// notation only accepts credentials already in DOCKER_CONFIG).
func (c *clients) loginNotationAs(user, password string) {
	c.t.Helper()
	r := c.exec(password, "notation", "login", "--insecure-registry", "-u", user, "--password-stdin", c.srv.Host)
	require.NoError(c.t, r.Err, "notation login as %s:\n%s", user, r)
}
