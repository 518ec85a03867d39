package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

func TestUpstreamTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "0123456789")
	}))
	defer srv.Close()
	m := New()
	c := &http.Client{Transport: m.UpstreamTransport("7", http.DefaultTransport)}
	for _, p := range []string{"/v2/a/blobs/sha256:x", "/v2/a/manifests/v1", "/v2/a/referrers/sha256:x", "/token"} {
		resp, err := c.Get(srv.URL + p)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
	}
	require.Equal(t, 1.0, value(t, m.UpstreamRequests.WithLabelValues("7", "blob", "2xx")))
	require.Equal(t, 1.0, value(t, m.UpstreamRequests.WithLabelValues("7", "manifest", "4xx")))
	require.Equal(t, 1.0, value(t, m.UpstreamRequests.WithLabelValues("7", "referrers", "2xx")))
	require.Equal(t, 1.0, value(t, m.UpstreamRequests.WithLabelValues("7", "auth", "2xx")))
	require.Equal(t, 10.0, value(t, m.UpstreamBytesFetched.WithLabelValues("7")))
}

func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}
