package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/robot"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/token"
)

// tokenEnv is a Berth with projects a and b (private) and pub (public), a system-level robot that
// may pull and push everywhere, and a project-level robot that may only pull from a.
type tokenEnv struct {
	*served
	host                   string
	pusher, reader         authn.Basic
	readerID               int64
	signKey, oldKey, alien string // key files: the server's, a previous one it verifies, an unknown one
}

func newTokenEnv(t *testing.T) *tokenEnv {
	t.Helper()
	dir := t.TempDir()
	e := &tokenEnv{signKey: filepath.Join(dir, "sign.pem"), oldKey: filepath.Join(dir, "old.pem"), alien: filepath.Join(dir, "alien.pem")}
	for _, f := range []string{e.signKey, e.oldKey, e.alien} {
		_, err := token.LoadOrCreateSigningKey(f)
		require.NoError(t, err)
	}
	e.served = startServe(t, nil, "--token-signing-key-file", e.signKey, "--token-verify-key-files", e.oldKey)
	e.host = strings.TrimPrefix(e.URL, "http://")
	c := e.harborClient(t, "admin", e.pass)
	for _, p := range []string{"a", "b", "pub"} {
		createProject(t, c, p, p == "pub")
	}
	_, name, secret := createRobot(t, c, &models.RobotCreate{Name: "pusher", Level: "system", Duration: -1, Permissions: projectPerm("*", "pull", "push")})
	e.pusher = authn.Basic{Username: name, Password: secret}
	e.readerID, name, secret = createRobot(t, c, &models.RobotCreate{Name: "reader", Level: "project", Duration: -1, Permissions: projectPerm("a", "pull")})
	e.reader = authn.Basic{Username: name, Password: secret}
	return e
}

func (e *tokenEnv) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(e.host+"/"+s, name.Insecure)
	require.NoError(t, err)
	return r
}

// pushRandom pushes a small random image to ref as the pusher and returns it.
func (e *tokenEnv) pushRandom(t *testing.T, ref string) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	require.NoError(t, err)
	require.NoError(t, remote.Write(e.ref(t, ref), img, remote.WithAuth(&e.pusher)))
	return img
}

// getToken asks the token endpoint for scopes as user (nil: anonymous) and returns the status and body.

func (e *tokenEnv) getToken(t *testing.T, user *authn.Basic, scopes ...string) (int, map[string]any) {
	t.Helper()
	q := url.Values{"service": {"berth"}, "scope": scopes}
	req, err := http.NewRequest(http.MethodGet, e.URL+"/service/token?"+q.Encode(), nil)
	require.NoError(t, err)
	if user != nil {
		req.SetBasicAuth(user.Username, user.Password)
	}
	return doJSON(t, req)
}

// doJSON sends req and returns the status and the JSON object answered.
func doJSON(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	r := roundTrip(t, req)
	var out map[string]any
	require.NoError(t, json.Unmarshal(r.body, &out), "%s", r.body)
	return r.status, out
}

// access returns the access claim of a raw token, without verifying it.
func access(t *testing.T, raw string) []token.ResourceActions {
	t.Helper()
	parts := strings.Split(raw, ".")
	require.Len(t, parts, 3)
	var c token.Claims
	b, err := base64URL(parts[1])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &c))
	return c.Access
}

// bearerStatus sends GET path with the token and returns the status and challenge.
func (e *tokenEnv) bearerStatus(t *testing.T, path, raw string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.URL+path, nil)
	require.NoError(t, err)
	return sendBearer(t, req, raw)
}

// sendBearer sends req with the bearer token raw and returns the status and the WWW-Authenticate
// challenge.
func sendBearer(t *testing.T, req *http.Request, raw string) (int, string) {
	t.Helper()
	req.Header.Set("Authorization", "Bearer "+raw)
	r := roundTrip(t, req)
	return r.status, r.header.Get("WWW-Authenticate")
}

// issueToken signs a token granting grant to admin with the key in keyFile, as a token service with
// opts would (Service "" is "berth"), and returns it raw.
func issueToken(t *testing.T, keyFile string, opts token.Options, grant []token.ResourceActions) string {
	t.Helper()
	k, err := token.LoadOrCreateSigningKey(keyFile)
	require.NoError(t, err)
	ks, err := token.NewKeySet(k)
	require.NoError(t, err)
	if opts.Service == "" {
		opts.Service = "berth"
	}
	svc, err := token.New(ks, opts)
	require.NoError(t, err)
	tok, err := svc.Issue("admin", grant)
	require.NoError(t, err)
	return tok.Raw
}

func statusOf(t *testing.T, err error) int {
	t.Helper()
	var te *transport.Error
	require.ErrorAs(t, err, &te)
	return te.StatusCode
}

// TestTokenFlowRobots pushes and pulls with robot credentials through the Bearer challenge and checks
// that each robot gets exactly what it was granted.
func TestTokenFlowRobots(t *testing.T) {
	e := newTokenEnv(t)
	img, err := random.Image(512, 2)
	require.NoError(t, err)

	// The challenge names the token service; Basic sent up front is still accepted.
	st, challenge := e.bearerStatus(t, "/v2/", "")
	require.Equal(t, http.StatusUnauthorized, st)
	require.Equal(t, `Bearer realm="`+e.URL+`/service/token",service="berth"`, challenge)

	for _, repo := range []string{"a/app:v1", "b/app:v1", "pub/app:v1"} {
		require.NoError(t, remote.Write(e.ref(t, repo), img, remote.WithAuth(&e.pusher)), repo)
	}
	_, err = remote.Image(e.ref(t, "a/app:v1"), remote.WithAuth(&e.reader))
	require.NoError(t, err)
	_, err = remote.Image(e.ref(t, "pub/app:v1"), remote.WithAuth(&e.reader))
	require.NoError(t, err, "public projects stay readable")

	err = remote.Write(e.ref(t, "a/app:v2"), img, remote.WithAuth(&e.reader))
	require.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, statusOf(t, err), "pull-only robot pushing: %v", err)
	_, err = remote.Image(e.ref(t, "b/app:v1"), remote.WithAuth(&e.reader))
	require.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, statusOf(t, err), "reading private b: %v", err)

	// More scope than granted: the token carries only the granted part.
	st, body := e.getToken(t, &e.reader, "repository:a/app:pull,push,delete", "repository:b/app:pull", "registry:catalog:*")
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, []token.ResourceActions{{Type: "repository", Name: "a/app", Actions: []string{"pull"}}}, access(t, body["token"].(string)))
	require.Equal(t, body["token"], body["access_token"])
	require.InDelta(t, (30 * time.Minute).Seconds(), body["expires_in"], 0)
	st, body = e.getToken(t, nil, "repository:pub/app:pull,push", "repository:a/app:pull")
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, []token.ResourceActions{{Type: "repository", Name: "pub/app", Actions: []string{"pull"}}}, access(t, body["token"].(string)))
	st, _ = e.getToken(t, &authn.Basic{Username: e.reader.Username, Password: "Wrong-Secret-1"}, "repository:a/app:pull")
	require.Equal(t, http.StatusUnauthorized, st)
	st, _ = e.getToken(t, &e.reader, "not-a-scope")
	require.Equal(t, http.StatusBadRequest, st)

	// OAuth2 password grant (POST).
	form := url.Values{"grant_type": {"password"}, "username": {e.reader.Username}, "password": {e.reader.Password},
		"service": {"berth"}, "scope": {"repository:a/app:pull repository:b/app:pull"}, "client_id": {"test"}}
	req, err := http.NewRequest(http.MethodPost, e.URL+"/service/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	st, body = doJSON(t, req)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, "repository:a/app:pull", body["scope"])
	st, _ = e.bearerStatus(t, "/v2/a/app/manifests/v1", body["access_token"].(string))
	require.Equal(t, http.StatusOK, st)
}

// TestTokenRefusals checks that the registry accepts its own tokens and those of a previous key, and
// refuses tokens of another key, expired ones and ones for another service.
func TestTokenRefusals(t *testing.T) {
	e := newTokenEnv(t)
	img := e.pushRandom(t, "a/app:v1")
	grant := []token.ResourceActions{{Type: "repository", Name: "a/app", Actions: []string{"pull"}}}
	issue := func(keyFile string, opts token.Options) string { return issueToken(t, keyFile, opts, grant) }
	const path = "/v2/a/app/manifests/v1"
	for _, tc := range []struct {
		name string
		raw  string
		want int
	}{
		{"current key", issue(e.signKey, token.Options{}), http.StatusOK},
		{"previous key (verify only)", issue(e.oldKey, token.Options{}), http.StatusOK},
		{"another key", issue(e.alien, token.Options{}), http.StatusUnauthorized},
		{"expired", issue(e.signKey, token.Options{Expiry: time.Minute, Now: func() time.Time { return time.Now().Add(-2 * time.Minute) }}), http.StatusUnauthorized},
		{"not yet valid", issue(e.signKey, token.Options{Now: func() time.Time { return time.Now().Add(10 * time.Minute) }}), http.StatusUnauthorized},
		{"another service", issue(e.signKey, token.Options{Service: "other"}), http.StatusUnauthorized},
		{"another issuer", issue(e.signKey, token.Options{Issuer: "someone"}), http.StatusUnauthorized},
		{"garbage", "abc.def.ghi", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := e.bearerStatus(t, path, tc.raw)
			require.Equal(t, tc.want, st)
		})
	}
	// A valid token used beyond its scope is challenged for the scope it lacks.
	st, challenge := e.bearerStatus(t, "/v2/b/app/manifests/v1", issue(e.signKey, token.Options{}))
	require.Equal(t, http.StatusUnauthorized, st)
	require.Contains(t, challenge, `scope="repository:b/app:pull",error="insufficient_scope"`)

	// A cross-repository mount with a token for the target only is challenged, as distribution does,
	// for the source's pull too; with a token for both it mounts (201).
	layers, err := img.Layers()
	require.NoError(t, err)
	ld, err := layers[0].Digest()
	require.NoError(t, err)
	mount := func(grant []token.ResourceActions) (int, string) {
		req, err := http.NewRequest(http.MethodPost, e.URL+"/v2/b/app/blobs/uploads/?mount="+ld.String()+"&from=a/app", nil)
		require.NoError(t, err)
		return sendBearer(t, req, issueToken(t, e.signKey, token.Options{}, grant))
	}
	target := token.ResourceActions{Type: "repository", Name: "b/app", Actions: []string{"pull", "push"}}
	st, challenge = mount([]token.ResourceActions{target})
	require.Equal(t, http.StatusUnauthorized, st)
	require.Contains(t, challenge, `scope="repository:b/app:pull,push repository:a/app:pull",error="insufficient_scope"`)
	st, _ = mount([]token.ResourceActions{target, {Type: "repository", Name: "a/app", Actions: []string{"pull"}}})
	require.Equal(t, http.StatusCreated, st)
}

// TestDisabledRobotStopsWithinASecond disables a robot holding a token and checks that its token,
// its Basic credentials and the token endpoint refuse it within one second.
func TestDisabledRobotStopsWithinASecond(t *testing.T) {
	e := newTokenEnv(t)
	e.pushRandom(t, "a/app:v1")
	st, body := e.getToken(t, &e.reader, "repository:a/app:pull")
	require.Equal(t, http.StatusOK, st)
	raw := body["token"].(string)
	st, _ = e.bearerStatus(t, "/v2/a/app/manifests/v1", raw)
	require.Equal(t, http.StatusOK, st)

	c := e.harborClient(t, "admin", e.pass)
	got, err := c.Robot.GetRobotByID(t.Context(), &robot.GetRobotByIDParams{RobotID: e.readerID})
	require.NoError(t, err)
	got.Payload.Disable = true
	_, err = c.Robot.UpdateRobot(t.Context(), &robot.UpdateRobotParams{RobotID: e.readerID, Robot: got.Payload})
	require.NoError(t, err)
	disabled := time.Now()

	st, _ = e.getToken(t, &e.reader, "repository:a/app:pull")
	require.Equal(t, http.StatusUnauthorized, st, "token endpoint")
	_, err = remote.Image(e.ref(t, "a/app:v1"), remote.WithAuth(&e.reader))
	require.Equal(t, http.StatusUnauthorized, statusOf(t, err), "token flow")
	require.Eventually(t, func() bool {
		st, _ := e.bearerStatus(t, "/v2/a/app/manifests/v1", raw)
		return st == http.StatusUnauthorized
	}, time.Second-time.Since(disabled), 20*time.Millisecond, "the token issued before")
}

var base64RawURL = base64.RawURLEncoding

func base64URL(s string) ([]byte, error) {
	b, err := base64RawURL.DecodeString(s)
	if err != nil {
		return nil, errors.Join(errors.New("token payload"), err)
	}
	return b, nil
}
