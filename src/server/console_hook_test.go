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
