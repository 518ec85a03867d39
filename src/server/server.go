// Package server composes Berth's HTTP surface: the OCI API under /v2/, the Harbor-compatible REST API
// under /api/v2.0/, and /metrics, behind one request-logging middleware.
package server

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berth-registry/berth/src/pkg/metrics"
)

// Option tunes New.
type Option func(*options)

type options struct {
	log       *accessLog
	noMetrics bool
	stall     *stallGuard
	console   http.Handler // WithConsole
	token     http.Handler // WithTokenService
}

// WithTokenService mounts the registry's token endpoint (package server/token) at /service/token.
func WithTokenService(h http.Handler) Option {
	return func(o *options) { o.token = h }
}

// WithStallTimeout cuts clients that move no bytes for d: a request body that delivers none, a response
// the client does not read (see stallGuard). d <= 0 leaves connections unguarded.
func WithStallTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.stall = &stallGuard{timeout: d, now: time.Now}
		}
	}
}

// WithoutMetrics leaves /metrics out of the handler (404), for when main serves the metrics on a
// listener of their own (metrics-addr).
func WithoutMetrics() Option { return func(o *options) { o.noMetrics = true } }

// WithAccessLogWriter lets the request log line be formatted without slog's generic machinery and
// written to out, in format "text" or "json". It is only correct when log (New's) is a plain
// slog.NewTextHandler or slog.NewJSONHandler (per format) on out, without attributes or groups added:
// the line is then exactly what that handler would write. Lines with strings that need quoting still go
// through log.
func WithAccessLogWriter(out io.Writer, format string) Option {
	return func(o *options) {
		a := o.log
		switch format {
		case "text", "":
			a.out, a.json = out, false
		case "json":
			a.out, a.json = out, true
		}
	}
}

// WithConsole mounts the web console at "/": it answers every path the other surfaces (/v2/, /api/,
// /metrics, and any pattern registered on the mux) do not.
func WithConsole(h http.Handler) Option {
	return func(o *options) { o.console = h }
}

// New returns the root handler. It serves /metrics unless WithoutMetrics is given.
func New(registry, api http.Handler, m *metrics.Metrics, log *slog.Logger, opts ...Option) http.Handler {
	o := options{log: &accessLog{log: log}}
	for _, opt := range opts {
		opt(&o)
	}
	mux := http.NewServeMux()
	mux.Handle("/v2/", registry)
	mux.Handle("/v2", http.RedirectHandler("/v2/", http.StatusMovedPermanently))
	mux.Handle("/api/", api)
	if !o.noMetrics {
		mux.Handle("GET /metrics", m.Handler())
	}
	if o.token != nil {
		mux.Handle("/service/token", o.token)
	}
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
	if o.console != nil {
		mux.Handle("/", o.console)
	}
	return logRequests(root, m, o.log, o.stall)
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

func logRequests(next http.Handler, m *metrics.Metrics, log *accessLog, stall *stallGuard) http.Handler {
	hm := &httpMetrics{m: m}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if stall != nil {
			sw := stall.wrap(w, r)
			defer sw.extend() // covers net/http's final flush
			w = sw
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		route := routeOf(r.URL.Path)
		hm.observe(r.Method, route, sw.status, d.Seconds())
		log.write(r.Context(), start.Add(d), request{method: r.Method, path: r.URL.Path, remote: r.RemoteAddr,
			status: sw.status, bytes: sw.bytes, duration: d})
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
	case p == "/service/token":
		return "token"
	}
	return "other"
}

var _ io.ReaderFrom = (*statusWriter)(nil)
