package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/metrics"
	"github.com/berth-registry/berth/src/server"
)

// named answers with its name, and the path it saw in X-Path, so the test sees which handler a path
// reached and with what path.
func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		_, _ = io.WriteString(w, name)
	})
}

func TestRouting(t *testing.T) {
	srv := httptest.NewServer(server.New(named("registry"), named("api"), metrics.New(), slog.New(slog.DiscardHandler)))
	defer srv.Close()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		method, path string
		status       int
		body         string // prefix of the body
	}{
		{"GET", "/v2/", 200, "registry /v2/"},
		{"GET", "/v2/lib/app/manifests/v1", 200, "registry /v2/lib/app/manifests/v1"},
		// Unclean paths reach the registry handler as they are; it refuses them as invalid names.
		{"GET", "/v2/lib/../app/tags/list", 200, "registry /v2/lib/../app/tags/list"},
		{"GET", "/v2//app/tags/list", 200, "registry /v2//app/tags/list"},
		{"GET", "/v2", 301, ""},
		{"GET", "/api/v2.0/ping", 200, "api /api/v2.0/ping"},
		{"GET", "/metrics", 200, "# HELP"},
		{"POST", "/metrics", 405, ""},
		{"GET", "/elsewhere", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			require.NoError(t, err)
			res, err := c.Do(req)
			require.NoError(t, err)
			defer func() { _ = res.Body.Close() }()
			b, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			require.Equal(t, tt.status, res.StatusCode, string(b))
			if tt.body != "" {
				got := string(b)
				if p := res.Header.Get("X-Path"); p != "" {
					got += " " + p
				}
				require.Contains(t, got, tt.body)
			}
		})
	}
}

// Every request is counted once under its method, route and status, whether its labelled children were
// kept (standard methods) or looked up each time (others).
func TestHTTPMetrics(t *testing.T) {
	m := metrics.New()
	srv := httptest.NewServer(server.New(named("registry"), named("api"), m, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	for _, method := range []string{"GET", "GET", "HEAD", "BREW"} {
		req, err := http.NewRequest(method, srv.URL+"/v2/", nil)
		require.NoError(t, err)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
	}
	res, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	text := string(b)
	for _, line := range []string{
		`berth_http_requests_total{code="200",method="GET",route="v2"} 2`,
		`berth_http_requests_total{code="200",method="HEAD",route="v2"} 1`,
		`berth_http_requests_total{code="200",method="BREW",route="v2"} 1`,
		`berth_http_request_duration_seconds_count{method="GET",route="v2"} 2`,
		`berth_http_request_duration_seconds_count{method="BREW",route="v2"} 1`,
	} {
		require.Contains(t, text, line+"\n")
	}
}

func TestWithoutMetrics(t *testing.T) {
	srv := httptest.NewServer(server.New(named("registry"), named("api"), metrics.New(), slog.New(slog.DiscardHandler), server.WithoutMetrics()))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

// TestConsoleMount checks that WithConsole takes only the paths the other surfaces leave.
func TestConsoleMount(t *testing.T) {
	srv := httptest.NewServer(server.New(named("registry"), named("api"), metrics.New(), slog.New(slog.DiscardHandler),
		server.WithConsole(named("console"))))
	defer srv.Close()
	for _, tc := range []struct{ path, want string }{
		{"/", "console"},
		{"/projects/lib/artifact?repo=app", "console"},
		{"/static/app.js", "console"},
		{"/v2/", "registry"},
		{"/v2/lib/app/tags/list", "registry"},
		{"/api/v2.0/projects", "api"},
		{"/metrics", "# HELP"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode, tc.path)
		require.Regexp(t, "^"+tc.want, string(body), tc.path)
	}
}
