package token_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
	"github.com/berth-registry/berth/src/pkg/token"
	tokenhttp "github.com/berth-registry/berth/src/server/token"
)

type env struct {
	srv *httptest.Server
	svc *token.Service
}

// newEnv serves the endpoint over a SQLite store with projects priv (private) and pub (public).
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "berth.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	for _, p := range []*meta.Project{{Name: "priv"}, {Name: "pub", Metadata: map[string]string{meta.MetaPublic: "true"}}} {
		_, err := store.CreateProject(ctx, p)
		require.NoError(t, err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ks, err := token.NewKeySet(k)
	require.NoError(t, err)
	svc, err := token.New(ks, token.Options{Service: "berth"})
	require.NoError(t, err)
	authn := auth.NewAuthenticator("pw", auth.WithBearer(token.NewVerifier(svc, nil)))
	srv := httptest.NewServer(tokenhttp.New(svc, authn, store, nil))
	t.Cleanup(srv.Close)
	return &env{srv: srv, svc: svc}
}

// get asks for scopes; user "" is anonymous. It returns the status and, on 200, the granted access.
func (e *env) get(t *testing.T, user, pass string, q url.Values) (int, []token.ResourceActions) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+tokenhttp.Path+"?"+q.Encode(), nil)
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return e.send(t, req)
}

func (e *env) send(t *testing.T, req *http.Request) (int, []token.ResourceActions) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}
	require.NoError(t, json.Unmarshal(b, &body))
	require.Equal(t, int(token.DefaultExpiry.Seconds()), body.ExpiresIn)
	require.NotEmpty(t, body.IssuedAt)
	if req.Method == http.MethodGet {
		require.Equal(t, body.AccessToken, body.Token)
	}
	c, err := e.svc.Verify(body.AccessToken)
	require.NoError(t, err)
	return resp.StatusCode, c.Access
}

func scopes(s ...string) url.Values { return url.Values{"service": {"berth"}, "scope": s} }

func ra(typ, name string, actions ...string) token.ResourceActions {
	return token.ResourceActions{Type: typ, Name: name, Actions: actions}
}

func TestGrants(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name       string
		user, pass string
		q          url.Values
		status     int
		want       []token.ResourceActions
	}{
		{"admin gets all asked", "admin", "pw", scopes("repository:priv/app:pull,push", "repository:priv/app:delete", "registry:catalog:*"), 200,
			[]token.ResourceActions{ra("repository", "priv/app", "pull", "push", "delete"), ra("registry", "catalog", "*")}},
		{"admin star", "admin", "pw", scopes("repository:priv/app:*"), 200, []token.ResourceActions{ra("repository", "priv/app", "*")}},
		{"missing project grants nothing", "admin", "pw", scopes("repository:nope/app:pull"), 200, []token.ResourceActions{}},
		{"anonymous reads public only", "", "", scopes("repository:pub/app:pull,push", "repository:priv/app:pull", "registry:catalog:*"), 200,
			[]token.ResourceActions{ra("repository", "pub/app", "pull")}},
		{"no scope", "", "", url.Values{}, 200, []token.ResourceActions{}},
		{"unknown action", "admin", "pw", scopes("repository:priv/app:fly"), 200, []token.ResourceActions{}},
		{"wrong password", "admin", "nope", scopes("repository:pub/app:pull"), 401, nil},
		{"other service", "admin", "pw", url.Values{"service": {"other"}}, 400, nil},
		{"bad scope", "admin", "pw", scopes("repository"), 400, nil},
		{"too many scopes", "admin", "pw", scopes(strings.Split(strings.Repeat("repository:pub/a:pull ", 65), " ")[:65]...), 400, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, got := e.get(t, tc.user, tc.pass, tc.q)
			require.Equal(t, tc.status, st)
			if st == 200 {
				require.Equal(t, tc.want, got)
			}
		})
	}
}

func TestPostAndRefusals(t *testing.T) {
	e := newEnv(t)
	post := func(form url.Values, hdr map[string]string) (int, []token.ResourceActions) {
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+tokenhttp.Path, strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return e.send(t, req)
	}
	st, got := post(url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"pw"}, "service": {"berth"},
		"scope": {"repository:priv/app:pull repository:pub/app:push"}}, nil)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, []token.ResourceActions{ra("repository", "priv/app", "pull"), ra("repository", "pub/app", "push")}, got)
	st, _ = post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, nil)
	require.Equal(t, http.StatusBadRequest, st)

	// A token cannot be exchanged for another (it would outlive its own expiry).
	tok, err := e.svc.Issue("admin", nil)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+tokenhttp.Path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok.Raw)
	st, _ = e.send(t, req)
	require.Equal(t, http.StatusUnauthorized, st)

	req, err = http.NewRequest(http.MethodPut, e.srv.URL+tokenhttp.Path, nil)
	require.NoError(t, err)
	st, _ = e.send(t, req)
	require.Equal(t, http.StatusMethodNotAllowed, st)
}
