package registrytest

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Hostile is an upstream registry that attacks its client, for the trust-boundary tests: two listeners on
// different origins, the registry and a "third party" (a CDN, an attacker's host or an internal service,
// as the test decides), each serving the routes the test scripts and recording every request it receives,
// including its Authorization header. Builders below script the attacks: redirects, slow bodies, huge
// referrers pages, pagination and redirect loops, foreign Links, and Basic or Bearer challenges.
type Hostile struct {
	// Registry is the registry's listener; ThirdParty the other origin.
	Registry, ThirdParty *Listener
}

// Listener is one recording HTTP server with a routing table. Unrouted paths are 404, except the
// registry's GET /v2/, which is 200 unless an auth requirement answers first.
type Listener struct {
	// URL is the listener's base URL (http://127.0.0.1:<port>).
	URL string

	mu     sync.Mutex
	routes map[string]http.Handler // exact path -> handler
	reqs   []Request
	auth   func(w http.ResponseWriter, r *http.Request) bool
}

// Request is one recorded request.
type Request struct {
	Method string
	// URL is the request's path and query.
	URL           string
	Host          string
	Authorization string
	Header        http.Header
}

// NewHostile starts both listeners (closed by t.Cleanup).
func NewHostile(t testing.TB) *Hostile {
	t.Helper()
	h := &Hostile{Registry: newListener(t, true), ThirdParty: newListener(t, false)}
	return h
}

func newListener(t testing.TB, registry bool) *Listener {
	l := &Listener{routes: map[string]http.Handler{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.record(r)
		l.mu.Lock()
		h, ok := l.routes[r.URL.Path]
		auth := l.auth
		l.mu.Unlock()
		if auth != nil && r.URL.Path != "/token" && !auth(w, r) {
			return
		}
		switch {
		case ok:
			h.ServeHTTP(w, r)
		case registry && r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	l.URL = srv.URL
	return l
}

func (l *Listener) record(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, Request{Method: r.Method, URL: r.URL.RequestURI(), Host: r.Host,
		Authorization: r.Header.Get("Authorization"), Header: r.Header.Clone()})
}

// Handle routes the exact path to h (replacing an earlier route).
func (l *Listener) Handle(path string, h http.Handler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.routes[path] = h
}

// Requests returns the requests received so far, in order.
func (l *Listener) Requests() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Request(nil), l.reqs...)
}

// Authorized returns the received requests that carried an Authorization header.
func (l *Listener) Authorized() []Request {
	var out []Request
	for _, r := range l.Requests() {
		if r.Authorization != "" {
			out = append(out, r)
		}
	}
	return out
}

// RequireBasic makes every request but GET /token answer 401 with a Basic challenge unless it carries
// user:pass.
func (l *Listener) RequireBasic(user, pass string) {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.auth = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == want {
			return true
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="hostile"`)
		w.WriteHeader(http.StatusUnauthorized)
		return false
	}
}

// RequireBearer serves a token service at /token on this listener, which issues a token for user:pass
// (Basic), and makes every other request answer 401 with a Bearer challenge unless it carries a token
// issued here. It returns the token service's issue count.
func (l *Listener) RequireBearer(user, pass string) *atomic.Int64 {
	var issued atomic.Int64
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	var tokens sync.Map
	l.Handle("/token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != basic {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		tok := "hostile-token-" + strconv.FormatInt(issued.Add(1), 10)
		tokens.Store(tok, true)
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"token":%q,"expires_in":300}`, tok)
	}))
	realm := l.URL + "/token"
	l.mu.Lock()
	defer l.mu.Unlock()
	l.auth = func(w http.ResponseWriter, r *http.Request) bool {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			if _, known := tokens.Load(tok); known {
				return true
			}
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="hostile"`, realm))
		w.WriteHeader(http.StatusUnauthorized)
		return false
	}
	return &issued
}

// Redirect answers with status (301, 302, 303, 307, 308) and Location to.
func Redirect(status int, to string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", to)
		w.WriteHeader(status)
	})
}

// Body answers 200 with contentType, body and extra header pairs ("Link", "<...>; rel=\"next\"").
func Body(contentType string, body []byte, header ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Add(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	})
}

// Drip answers 200 with body in chunks of chunk bytes, flushing each and pausing between them.
func Drip(contentType string, body []byte, chunk int, pause time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		rc := http.NewResponseController(w)
		for len(body) > 0 {
			n := min(chunk, len(body))
			if _, err := w.Write(body[:n]); err != nil {
				return
			}
			_ = rc.Flush()
			body = body[n:]
			select {
			case <-r.Context().Done():
				return
			case <-time.After(pause):
			}
		}
	})
}

// Link formats a pagination Link header value for target.
func Link(target string) string { return "<" + target + `>; rel="next"` }

// ReferrersPages serves an endless-looking referrers list: pages numbered by the "page" query (1 when
// absent), each an image index of at least pageBytes bytes of distinct descriptors, linking to the next
// page up to pages. Bodies are generated while written, so the server itself stays small. served counts
// the bytes written.
func ReferrersPages(pages, pageBytes int, served *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("page"))
		n = max(n, 1)
		if n < pages {
			w.Header().Set("Link", Link(fmt.Sprintf("%s?page=%d", r.URL.Path, n+1)))
		}
		w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
		cw := &countWriter{w: w, n: served}
		_, _ = io.WriteString(cw, `{"schemaVersion":2,"mediaType":"`+ocispec.MediaTypeImageIndex+`","manifests":[`)
		for i := 0; cw.written < int64(pageBytes); i++ {
			if i > 0 {
				_, _ = io.WriteString(cw, ",")
			}
			d := digest.FromString(fmt.Sprintf("page %d entry %d", n, i))
			if _, err := fmt.Fprintf(cw, `{"mediaType":%q,"digest":%q,"size":1024,"artifactType":"application/vnd.hostile","annotations":{"pad":%q}}`,
				ocispec.MediaTypeImageManifest, d, strings.Repeat("x", 256)); err != nil {
				return
			}
		}
		_, _ = io.WriteString(cw, "]}")
	})
}

type countWriter struct {
	w       io.Writer
	n       *atomic.Int64
	written int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.written += int64(n)
	if c.n != nil {
		c.n.Add(int64(n))
	}
	return n, err
}
