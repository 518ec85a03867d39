package e2e

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProjectAccess: a private project refuses anonymous pulls (401 with a challenge, so clients know to
// send credentials) and serves logged-in ones; a public project serves anonymous pulls; nobody pushes
// anonymously.
func TestProjectAccess(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	srv.createProject(t, "secret", false)
	srv.createProject(t, "open", true)

	admin := newClients(t, srv, "oras", "crane")
	admin.loginOras()
	payload := []byte("private bytes\n")
	admin.writeFile("private.txt", payload)
	priv := admin.orasPush(srv.Host+"/secret/app:v1", typeApp, "private.txt:text/plain")
	pub := admin.orasPush(srv.Host+"/open/app:v1", typeApp, "private.txt:text/plain")

	anon := newClients(t, srv, "oras", "crane")

	// private: refused to anonymous clients and on the wire
	r := anon.mustFail("oras", "pull", "--plain-http", "-o", "out", srv.Host+"/secret/app:v1")
	t.Logf("anonymous oras pull of a private repository, as expected refused:\n%s", r)
	anon.mustFail("crane", "manifest", srv.Host+"/secret/app:v1")
	anon.mustFail("crane", "ls", srv.Host+"/secret/app")
	for _, path := range []string{
		"/v2/secret/app/manifests/v1",
		"/v2/secret/app/manifests/" + priv.Digest,
		"/v2/secret/app/tags/list",
		"/v2/secret/app/referrers/" + priv.Digest,
	} {
		res := srv.do(t, http.MethodGet, path, nil, nil, nil)
		require.Equal(t, http.StatusUnauthorized, res.Status, "anonymous read of a private project:\n%s", res)
		require.NotEmpty(t, res.Header.Get("WWW-Authenticate"), "401 without a challenge:\n%s", res)
	}

	// private: served to the logged-in client
	admin.must("oras", "pull", "--plain-http", "-o", "out", srv.Host+"/secret/app:v1")
	require.Equal(t, payload, admin.readFile(filepath.Join("out", "private.txt")))
	res := srv.do(t, http.MethodGet, "/v2/secret/app/manifests/v1", srv.admin(),
		http.Header{"Accept": {"application/vnd.oci.image.manifest.v1+json"}}, nil)
	require.Equal(t, http.StatusOK, res.Status, "authenticated read of a private project:\n%s", res)
	require.Equal(t, priv.Digest, sha256Digest(res.Body))

	// public: anonymous pull works
	anon.must("oras", "pull", "--plain-http", "-o", "pub", srv.Host+"/open/app:v1")
	require.Equal(t, payload, anon.readFile(filepath.Join("pub", "private.txt")))
	require.Equal(t, pub.Digest, sha256Digest([]byte(anon.must("crane", "manifest", srv.Host+"/open/app:v1"))))

	// nobody pushes anonymously, not even to a public project
	anon.writeFile("evil.txt", []byte("anonymous write\n"))
	anon.mustFail("oras", "push", "--plain-http", srv.Host+"/open/app:evil", "evil.txt:text/plain")
	require.Equal(t, []string{"v1"}, admin.tagsAs(srv.Host+"/open/app"))
	res = srv.do(t, http.MethodPost, "/v2/open/app/blobs/uploads/", nil, nil, nil)
	require.Equal(t, http.StatusUnauthorized, res.Status, "anonymous upload start:\n%s", res)

	// wrong password is refused
	res = srv.do(t, http.MethodGet, "/v2/secret/app/tags/list", &basicAuth{adminUser, "wrong-password"}, nil, nil)
	require.Equal(t, http.StatusUnauthorized, res.Status, "wrong password:\n%s", res)
}

// tagsAs lists tags with crane, logging in first (private repositories need it).
func (c *clients) tagsAs(repo string) []string {
	c.t.Helper()
	c.loginCrane()
	return c.tags(repo)
}
