package metrics

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// UpstreamTransport wraps rt so that every request to an upstream registry is counted in
// UpstreamRequests and UpstreamDuration (labels: registry, operation, outcome) and blob body bytes in
// UpstreamBytesFetched. registry is the registry's ID as a string.
func (m *Metrics) UpstreamTransport(registry string, rt http.RoundTripper) http.RoundTripper {
	return &upstreamTransport{m: m, registry: registry, next: rt}
}

type upstreamTransport struct {
	m        *Metrics
	registry string
	next     http.RoundTripper
}

func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := upstreamOperation(req.URL.Path)
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	t.m.UpstreamDuration.WithLabelValues(t.registry, op).Observe(time.Since(start).Seconds())
	outcome := "error"
	if err == nil {
		outcome = strconv.Itoa(resp.StatusCode/100) + "xx"
	}
	t.m.UpstreamRequests.WithLabelValues(t.registry, op, outcome).Inc()
	if err == nil && op == "blob" && req.Method == http.MethodGet && resp.Body != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, add: t.m.UpstreamBytesFetched.WithLabelValues(t.registry).Add}
	}
	return resp, err
}

// upstreamOperation names the kind of an upstream request from its path.
func upstreamOperation(p string) string {
	switch {
	case p == "/v2/" || p == "/v2":
		return "ping"
	case strings.Contains(p, "/referrers/"):
		return "referrers"
	case strings.Contains(p, "/manifests/"):
		return "manifest"
	case strings.Contains(p, "/blobs/"):
		return "blob"
	case strings.HasSuffix(p, "/tags/list"):
		return "tags"
	}
	return "auth"
}

type countingBody struct {
	io.ReadCloser
	add func(float64)
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.add(float64(n))
	}
	return n, err
}
