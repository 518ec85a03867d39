package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/secret"
)

func TestNewRequiresDependencies(t *testing.T) {
	f := newFakeStore()
	box, err := secret.NewBox(make([]byte, secret.KeySize))
	require.NoError(t, err)
	full := Deps{Projects: f, Registries: f, Repositories: f, Box: box, Auth: auth.NewAuthenticator("x"), Pinger: &fakePinger{}}
	_, err = New(full)
	require.NoError(t, err)
	for name, mutate := range map[string]func(*Deps){
		"projects":   func(d *Deps) { d.Projects = nil },
		"registries": func(d *Deps) { d.Registries = nil },
		"repos":      func(d *Deps) { d.Repositories = nil },
		"box":        func(d *Deps) { d.Box = nil },
		"auth":       func(d *Deps) { d.Auth = nil },
		"pinger":     func(d *Deps) { d.Pinger = nil },
		"health":     func(d *Deps) { d.Health = []Component{{Name: "database"}} },
	} {
		d := full
		mutate(&d)
		_, err := New(d)
		require.Error(t, err, name)
	}
}

func TestPing(t *testing.T) {
	e := newEnv(t)
	for _, user := range []string{"anon", "admin", "bad"} {
		w := e.must(req{method: http.MethodGet, path: "/api/v2.0/ping", user: user}, http.StatusOK)
		require.Equal(t, "Pong", w.Body.String())
		require.True(t, strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain"))
	}
}

func TestHealth(t *testing.T) {
	ok := CheckerFunc(func(context.Context) error { return nil })
	down := CheckerFunc(func(context.Context) error { return errors.New("dial tcp 127.0.0.1:6379: connection refused") })
	type comp struct{ Name, Status, Error string }
	cases := []struct {
		name    string
		health  []Component
		overall string
		want    []comp
	}{
		{"core only", nil, "healthy", []comp{{"core", "healthy", ""}}},
		{"all healthy", []Component{{"database", ok}, {"redis", ok}}, "healthy",
			[]comp{{"core", "healthy", ""}, {"database", "healthy", ""}, {"redis", "healthy", ""}}},
		{"redis down", []Component{{"database", ok}, {"redis", down}}, "unhealthy",
			[]comp{{"core", "healthy", ""}, {"database", "healthy", ""},
				{"redis", "unhealthy", componentDown}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.health...)
			w := e.must(req{method: http.MethodGet, path: "/api/v2.0/health", user: "anon"}, http.StatusOK)
			got := decode[struct {
				Status     string
				Components []comp
			}](t, w)
			require.Equal(t, tc.overall, got.Status)
			require.Equal(t, tc.want, got.Components)
			if tc.overall == "healthy" {
				require.NotContains(t, w.Body.String(), `"error"`)
			} else {
				require.NotContains(t, w.Body.String(), "127.0.0.1", "the address stays in the log")
				require.Contains(t, e.logs.String(), "dial tcp 127.0.0.1:6379: connection refused")
			}
		})
	}
}

// TestHealthDraining: while the node drains, health answers 503 with "core" unhealthy (the components are
// still checked and reported), and 200 again when Draining says so.
func TestHealthDraining(t *testing.T) {
	ok := CheckerFunc(func(context.Context) error { return nil })
	var draining atomic.Bool
	box, err := secret.NewBox(bytes.Repeat([]byte{42}, secret.KeySize))
	require.NoError(t, err)
	f := newFakeStore()
	a, err := New(Deps{Projects: f, Registries: f, Repositories: f, Box: box, Auth: auth.NewAuthenticator(adminPassword),
		Pinger: &fakePinger{fail: map[string]error{}}, Health: []Component{{"database", ok}}, Draining: draining.Load})
	require.NoError(t, err)
	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v2.0/health", nil))
		return w
	}
	require.Equal(t, http.StatusOK, get().Code)
	draining.Store(true)
	w := get()
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	type comp struct{ Name, Status, Error string }
	got := decode[struct {
		Status     string
		Components []comp
	}](t, w)
	require.Equal(t, "unhealthy", got.Status)
	require.Equal(t, []comp{{"core", "unhealthy", coreDraining}, {"database", "healthy", ""}}, got.Components)
	draining.Store(false)
	require.Equal(t, http.StatusOK, get().Code)
}

func TestHealthStopsWithTheRequest(t *testing.T) {
	blocked := CheckerFunc(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	e := newEnv(t, Component{"database", blocked})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the request is gone: the check returns at once instead of waiting for healthTimeout
	w := httptest.NewRecorder()
	e.api.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v2.0/health", nil))
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, w.Body.String(), `"unhealthy"`)
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{http.MethodGet, "/api/v2.0/nope", http.StatusNotFound, "NOT_FOUND", ""},
		{http.MethodGet, "/api/v1/projects", http.StatusNotFound, "NOT_FOUND", ""},
		{http.MethodGet, "/api/v2.0/projects/a/b/c", http.StatusNotFound, "NOT_FOUND", ""},
		{http.MethodPatch, "/api/v2.0/projects", http.StatusMethodNotAllowed, "UNSUPPORTED", "GET, HEAD, POST"},
		{http.MethodPost, "/api/v2.0/ping", http.StatusMethodNotAllowed, "UNSUPPORTED", "GET, HEAD"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			w := e.must(req{method: tc.method, path: tc.path}, tc.status)
			require.Equal(t, tc.code, errCode(t, w))
			require.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"))
			if tc.allow != "" {
				require.Equal(t, tc.allow, w.Header().Get("Allow"))
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	admin := []req{
		{method: http.MethodPost, path: "/api/v2.0/projects", body: `{"project_name":"p"}`},
		{method: http.MethodPut, path: "/api/v2.0/projects/1", body: `{}`},
		{method: http.MethodDelete, path: "/api/v2.0/projects/1"},
		{method: http.MethodGet, path: "/api/v2.0/projects/1/metadatas"},
		{method: http.MethodPost, path: "/api/v2.0/projects/1/metadatas", body: `{"a":"b"}`},
		{method: http.MethodGet, path: "/api/v2.0/registries"},
		{method: http.MethodPost, path: "/api/v2.0/registries", body: `{}`},
		{method: http.MethodGet, path: "/api/v2.0/registries/1"},
		{method: http.MethodPut, path: "/api/v2.0/registries/1", body: `{}`},
		{method: http.MethodDelete, path: "/api/v2.0/registries/1"},
		{method: http.MethodPost, path: "/api/v2.0/registries/ping", body: `{}`},
	}
	for _, r := range admin {
		for _, user := range []string{"anon", "bad"} {
			t.Run(user+" "+r.method+" "+r.path, func(t *testing.T) {
				r.user = user
				w := e.must(r, http.StatusUnauthorized)
				require.Equal(t, "UNAUTHORIZED", errCode(t, w))
				require.Equal(t, `Basic realm="berth"`, w.Header().Get("WWW-Authenticate"))
			})
		}
	}
	// wrong credentials are refused even where anonymous callers are welcome
	w := e.must(req{method: http.MethodGet, path: "/api/v2.0/projects", user: "bad"}, http.StatusUnauthorized)
	require.Equal(t, "UNAUTHORIZED", errCode(t, w))
}

func TestBodies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		huge := `{"project_name":"big","metadata":{"x":"` + strings.Repeat("a", maxBody) + `"}}`
		cases := []struct {
			name   string
			body   any
			status int
		}{
			{"empty", "", http.StatusBadRequest},
			{"malformed", `{"project_name":`, http.StatusBadRequest},
			{"not an object", `[1,2]`, http.StatusBadRequest},
			{"wrong type", `{"project_name":5}`, http.StatusBadRequest},
			{"trailing data", `{"project_name":"a"} {"x":1}`, http.StatusBadRequest},
			{"trailing garbage", `{"project_name":"a"} x`, http.StatusBadRequest},
			{"too large", huge, http.StatusBadRequest},
			{"unknown fields tolerated", `{"project_name":"ok","owner_id":7,"cve_allowlist":{"items":[]}}`, http.StatusCreated},
			{"trailing white space", "{\"project_name\":\"ok2\"}\n\t ", http.StatusCreated},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				w := e.must(req{method: http.MethodPost, path: "/api/v2.0/projects", body: tc.body}, tc.status)
				if tc.status == http.StatusBadRequest {
					require.Equal(t, "BAD_REQUEST", errCode(t, w))
				}
			})
		}
	})
}
