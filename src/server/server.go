// Package server composes Berth's HTTP surface: the OCI API under /v2/, the Harbor-compatible REST API
// under /api/v2.0/, and /metrics, behind one request-logging middleware.
package server

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/src/pkg/metrics"
)

// New returns the root handler.
func New(registry, api http.Handler, m *metrics.Metrics, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v2/", registry)
	mux.Handle("/v2", http.RedirectHandler("/v2/", http.StatusMovedPermanently))
	mux.Handle("/api/", api)
	mux.Handle("GET /metrics", m.Handler())
	// Registry traffic, nearly all requests, skips the mux's pattern matching: the registry handler parses
	// and validates /v2/ paths itself (a path the mux would clean, with "." or ".." segments or "//", is an
	// invalid repository name there).
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/") {
			registry.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	return logRequests(root, m, log)
}

// statusWriter records the status and body size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom keeps the sendfile fast path of the underlying writer for blob downloads.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := copyTo(w.ResponseWriter, r)
	w.bytes += n
	return n, err
}

func logRequests(next http.Handler, m *metrics.Metrics, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		route := routeOf(r.URL.Path)
		m.HTTPRequests.WithLabelValues(r.Method, route, strconv.Itoa(sw.status)).Inc()
		m.HTTPDuration.WithLabelValues(r.Method, route).Observe(d.Seconds())
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", sw.status),
			slog.Int64("bytes", sw.bytes), slog.Duration("duration", d), slog.String("remote", r.RemoteAddr))
	})
}

// routeOf maps a path to a low-cardinality route label.
func routeOf(p string) string {
	switch {
	case p == "/v2/" || p == "/v2":
		return "v2"
	case strings.HasPrefix(p, "/v2/"):
		for _, kind := range []string{"/referrers/", "/blobs/uploads", "/blobs/", "/manifests/", "/tags/list", "_catalog"} {
			if strings.Contains(p, kind) {
				return "v2:" + strings.Trim(kind, "/")
			}
		}
		return "v2:other"
	case strings.HasPrefix(p, "/api/"):
		return "api"
	case p == "/metrics":
		return "metrics"
	}
	return "other"
}

var _ io.ReaderFrom = (*statusWriter)(nil)
