// Package registrytest starts real registries in-process for tests and pushes content into them:
// CNCF distribution v3 (no referrers API: clients use the referrers tag schema; optional htpasswd Basic
// auth and TLS) and go-containerregistry's registry (optionally with the referrers API). A TokenAuth puts
// a Docker-Hub-style Bearer token service in front of any of them. A Hostile is a scripted upstream
// that attacks its client (redirects, slow and huge bodies, loops, foreign Links, Basic or Bearer
// challenges) and records every request it and its third-party listener receive.
//
// Tests that start distribution should run through Main in their TestMain (distribution's tracing
// otherwise tries to export). Helpers fail the test through testing.TB; servers are closed by
// t.Cleanup.
package registrytest

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"golang.org/x/crypto/bcrypt"

	// The storage driver and access controller distribution is configured with.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// Server is a registry running in-process.
type Server struct {
	// URL is the registry's base URL (http://127.0.0.1:port, or https:// with WithTLS).
	URL string
	// Host is host:port, as a Link or a reference names it.
	Host string
	// Username and Password are the Basic credentials the registry requires ("" when none).
	Username, Password string
	// CACertificate is the PEM certificate of a TLS server ("" without TLS).
	CACertificate string

	srv   *httptest.Server
	inner http.Handler // the registry without the wrappers of WithWrapper: pushes go here
}

// Close stops the server (also done by t.Cleanup).
func (s *Server) Close() { s.srv.Close() }

// Option configures a server.
type Option func(*options)

type options struct {
	tls        bool
	user, pass string
	maxTags    int
	wrappers   []func(http.Handler) http.Handler
}

// WithTLS serves HTTPS with httptest's self-signed certificate (see Server.CACertificate).
func WithTLS() Option { return func(o *options) { o.tls = true } }

// WithBasicAuth requires Basic credentials on every request: distribution's htpasswd access controller,
// or, for go-containerregistry, a small Basic middleware.
func WithBasicAuth(user, pass string) Option {
	return func(o *options) { o.user, o.pass = user, pass }
}

// WithMaxTags caps distribution's tag-list pages (config tags.maxtags): a client asking ?n= larger gets
// this many and a Link to the next page.
func WithMaxTags(n int) Option { return func(o *options) { o.maxTags = n } }

// WithWrapper puts a middleware in front of the registry for clients (counting, faults, TokenAuth's
// Middleware). Content pushed with the Server's helpers bypasses it.
func WithWrapper(w func(http.Handler) http.Handler) Option {
	return func(o *options) { o.wrappers = append(o.wrappers, w) }
}

// NewDistribution starts CNCF distribution v3 with in-memory storage.
func NewDistribution(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := apply(opts)
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"inmemory":    configuration.Parameters{},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
			"delete":      configuration.Parameters{"enabled": true},
		},
	}
	cfg.HTTP.Secret = "registrytest-secret"
	cfg.Log.AccessLog.Disabled = true
	if o.maxTags > 0 {
		cfg.Tags.MaxTags = o.maxTags
	}
	if o.user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.pass), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("registrytest: hashing password: %v", err)
		}
		path := filepath.Join(t.TempDir(), "htpasswd")
		if err := os.WriteFile(path, []byte(o.user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatalf("registrytest: writing htpasswd: %v", err)
		}
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "registrytest", "path": path}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	t.Cleanup(func() {
		_ = app.Shutdown()
		cancel()
	})
	return start(t, app, o)
}

// NewGGCR starts go-containerregistry's in-memory registry, with the referrers API when referrers is
// true (it ignores ?artifactType= and reports config.mediaType as the artifactType).
func NewGGCR(t testing.TB, referrers bool, opts ...Option) *Server {
	t.Helper()
	o := apply(opts)
	var h http.Handler = ggcr.New(ggcr.WithReferrersSupport(referrers), ggcr.Logger(log.New(io.Discard, "", 0)))
	if o.user != "" {
		h = basicAuth(h, o.user, o.pass)
	}
	return start(t, h, o)
}

func apply(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

func start(t testing.TB, inner http.Handler, o options) *Server {
	outer := inner
	for _, w := range o.wrappers {
		outer = w(outer)
	}
	srv := httptest.NewUnstartedServer(outer)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake failures are what some tests want
	if o.tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	s := &Server{URL: srv.URL, Host: strings.TrimPrefix(strings.TrimPrefix(srv.URL, "https://"), "http://"),
		Username: o.user, Password: o.pass, srv: srv, inner: inner}
	if o.tls {
		s.CACertificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	}
	return s
}

func basicAuth(h http.Handler, user, pass string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="registrytest"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		h.ServeHTTP(w, r)
	})
}
