package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/secret"
)

const adminPassword = "Harbor12345"

// roles are the meta roles the API needs; the fake and the SQLite store both provide them.
type roles interface {
	meta.ProjectStore
	meta.RegistryStore
	RepositoryCounter
}

type env struct {
	t       *testing.T
	api     *API
	store   roles
	addRepo func(projectID int64) // adds a repository to the project
	pinger  *fakePinger
	box     *secret.Box
	logs    *bytes.Buffer // everything the API logged
	bodies  *bytes.Buffer // every response body, to check that secrets never leave
}

// envMaker builds a fresh env on one store backend.
type envMaker func(t *testing.T, health ...Component) *env

// newEnv builds an env on the in-memory fake.
func newEnv(t *testing.T, health ...Component) *env {
	f := newFakeStore()
	e := newEnvWith(t, f, health...)
	e.addRepo = func(id int64) { f.mu.Lock(); f.repos[id]++; f.mu.Unlock() }
	return e
}

// forEachBackend runs fn with envs on the in-memory fake and on a real SQLite meta store.
func forEachBackend(t *testing.T, fn func(t *testing.T, newEnv envMaker)) {
	t.Run("fake", func(t *testing.T) { fn(t, newEnv) })
	t.Run("sqlite", func(t *testing.T) { fn(t, newSQLiteEnv) })
}

func newEnvWith(t *testing.T, store roles, health ...Component) *env {
	t.Helper()
	box, err := secret.NewBox(bytes.Repeat([]byte{42}, secret.KeySize))
	require.NoError(t, err)
	e := &env{t: t, store: store, pinger: &fakePinger{fail: map[string]error{}}, box: box,
		logs: &bytes.Buffer{}, bodies: &bytes.Buffer{}}
	e.api, err = New(Deps{
		Projects: store, Registries: store, Repositories: store, Box: box,
		Auth: auth.NewAuthenticator(adminPassword), Pinger: e.pinger, Health: health,
		Log: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	return e
}

// req describes one request. user is "admin" (default), "anon" or "bad" (wrong password).
type req struct {
	method, path string
	body         any // string, []byte, or a value to encode as JSON; nil for none
	user         string
	header       map[string]string // set after the default Content-Type application/json of a body
}

func (e *env) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(e.t, err)
		body = bytes.NewReader(raw)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	switch r.user {
	case "", "admin":
		hr.SetBasicAuth(auth.AdminUser, adminPassword)
	case "bad":
		hr.SetBasicAuth(auth.AdminUser, "wrong")
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.api.ServeHTTP(w, hr)
	e.bodies.Write(w.Body.Bytes())
	for k, vs := range w.Header() {
		e.bodies.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	return w
}

// must sends r and requires the status.
func (e *env) must(r req, status int) *httptest.ResponseRecorder {
	e.t.Helper()
	w := e.do(r)
	require.Equal(e.t, status, w.Code, "%s %s: %s", r.method, r.path, w.Body.String())
	return w
}

// harborError is one error of Harbor's error body {"errors":[{"code","message"}]}.
type harborError struct{ Code, Message string }

// oneError decodes a Harbor error body and requires that it holds exactly one error.
func oneError(t *testing.T, w *httptest.ResponseRecorder) harborError {
	t.Helper()
	var body struct {
		Errors []harborError `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
	require.Len(t, body.Errors, 1)
	return body.Errors[0]
}

// errCode returns the code of the one Harbor error of a response ("" when the body is empty).
func errCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if w.Body.Len() == 0 {
		return ""
	}
	return oneError(t, w).Code
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &v), w.Body.String())
	return v
}

// createProject creates a project and returns its ID path.
func (e *env) createProject(body map[string]any) string {
	e.t.Helper()
	w := e.must(req{method: http.MethodPost, path: "/api/v2.0/projects", body: body}, http.StatusCreated)
	return w.Header().Get("Location")
}

// createRegistry creates a registry and returns its Location.
func (e *env) createRegistry(name, url, secretValue string) string {
	e.t.Helper()
	w := e.must(req{method: http.MethodPost, path: "/api/v2.0/registries", body: map[string]any{
		"name": name, "type": "docker-registry", "url": url,
		"credential": map[string]any{"type": "basic", "access_key": "user", "access_secret": secretValue},
	}}, http.StatusCreated)
	return w.Header().Get("Location")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// idOf returns the ID at the end of a Location.
func idOf(t *testing.T, loc string) int64 {
	t.Helper()
	id, err := strconv.ParseInt(loc[strings.LastIndexByte(loc, '/')+1:], 10, 64)
	require.NoError(t, err, loc)
	return id
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// decodeMessage returns the message of the one Harbor error of a response.
func decodeMessage(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	return oneError(t, w).Message
}
