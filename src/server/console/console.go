// Package console serves Berth's web console at "/": server-rendered html/template pages with a little
// vanilla JavaScript, embedded in the binary (no build step, no CDN). See docs/console.md.
//
// It logs in with the API's account check (auth.Authenticator) and keeps sessions in a SessionStore
// (the database or Redis, so they outlive a restart and every node knows them): the cookie is HttpOnly, SameSite=Strict and Secure on TLS, and every state change is a POST carrying
// the session's CSRF token (and, when the browser sends one, an Origin of this host). Anonymous visitors
// see public projects only, as with the API. Registry secrets are written, never shown.
//
// The console reads and writes through the same stores as the REST API (changes apply on the next
// request), and it reads referrers through the content.Referrers service the /v2/<name>/referrers
// handler uses, so a proxy-cache project with the Proxy Referrer API on shows the upstream's referrers.
package console

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/admin"
	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/metrics"
	"github.com/berth-registry/berth/src/pkg/secret"
	"github.com/berth-registry/berth/src/server/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// DefaultSessionTTL is how long a login lasts.
const DefaultSessionTTL = 8 * time.Hour

// Deps are the console's dependencies; all but Sessions, SessionTTL, Now and Log are required. Projects must be
// the store the API writes through (main's project cache), so that changes show at once.
type Deps struct {
	Projects   meta.ProjectStore
	Registries meta.RegistryStore
	Artifacts  api.ArtifactSource
	Referrers  content.Referrers // the service behind GET /v2/<name>/referrers/<digest>
	Auth       *auth.Authenticator
	Box        *secret.Box
	Pinger     api.RegistryPinger
	Metrics    *metrics.Metrics
	Log        *slog.Logger
	// Sessions keeps logins and their CSRF tokens (nil: NewMemorySessions, this process only).
	Sessions   SessionStore
	SessionTTL time.Duration
	Now        func() time.Time
	// ProjectCreated, when set, is called after the console creates a project (a proxy-cache project
	// gets its default retention policy there, as through the API).
	ProjectCreated func(ctx context.Context, p *meta.Project)
}

// Console is the http.Handler of the web console.
type Console struct {
	d        Deps
	pages    map[string]*template.Template
	sessions *sessions
	mux      *http.ServeMux
	creds    *admin.Credentials
	// pings holds the latest "test connection" outcome per registry ID (int64 -> pingResult).
	pings sync.Map
}

var _ http.Handler = (*Console)(nil)

// New returns the console handler; mount it at "/".
func New(d Deps) (*Console, error) {
	if d.Projects == nil || d.Registries == nil || d.Artifacts == nil || d.Referrers == nil ||
		d.Auth == nil || d.Box == nil || d.Pinger == nil || d.Metrics == nil {
		return nil, errors.New("console: Projects, Registries, Artifacts, Referrers, Auth, Box, Pinger and Metrics are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.SessionTTL <= 0 {
		d.SessionTTL = DefaultSessionTTL
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	if d.Sessions == nil {
		d.Sessions = NewMemorySessions()
	}
	creds, err := admin.NewCredentials(d.Box, d.Pinger, d.Log)
	if err != nil {
		return nil, err
	}
	c := &Console{d: d, pages: pages, mux: http.NewServeMux(), creds: creds,
		sessions: &sessions{ttl: d.SessionTTL, now: d.Now, store: d.Sessions, log: d.Log}}
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	m := c.mux
	static, _ := fs.Sub(staticFS, "static") // the embedded folder exists: fs.Sub cannot fail
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.Handle("GET /{$}", http.RedirectHandler("/projects", http.StatusSeeOther))
	m.HandleFunc("GET /login", c.page(c.loginForm))
	m.HandleFunc("POST /login", c.page(c.login))
	m.HandleFunc("POST /logout", c.change(c.logout))
	m.HandleFunc("GET /projects", c.page(c.listProjects))
	m.HandleFunc("POST /projects", c.change(c.createProject))
	m.HandleFunc("GET /projects/{project}", c.page(c.showProject))
	m.HandleFunc("POST /projects/{project}/config", c.change(c.configureProject))
	m.HandleFunc("GET /projects/{project}/repository", c.page(c.showRepository))
	m.HandleFunc("GET /projects/{project}/artifact", c.page(c.showArtifact))
	m.HandleFunc("POST /projects/{project}/artifact/delete", c.change(c.deleteArtifact))
	m.HandleFunc("GET /registries", c.page(c.listRegistries))
	m.HandleFunc("POST /registries", c.change(c.createRegistry))
	m.HandleFunc("GET /registries/{id}", c.page(c.editRegistry))
	m.HandleFunc("POST /registries/{id}", c.change(c.updateRegistry))
	m.HandleFunc("POST /registries/{id}/ping", c.change(c.pingRegistry))
	m.HandleFunc("GET /cache", c.page(c.cachePage))
}

// ServeHTTP answers console pages; unknown paths get the console's 404 page.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Content-Security-Policy",
		"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
	if _, pattern := c.mux.Handler(r); pattern == "" {
		c.page(func(*request) error {
			return errcode.ErrNotFound.WithMessage("no page at %s", r.URL.Path)
		})(w, r)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// request is one page request: the writer, the request and the session (nil when anonymous).
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	sess *session
}

func (q *request) admin() bool { return q.sess != nil && q.sess.Admin }

// principal is the visitor as auth sees it: the session's user, or anonymous.
func (q *request) principal() auth.Principal {
	if q.sess == nil {
		return auth.Principal{}
	}
	return q.sess.who()
}

// may reports whether the visitor may perform act on p (auth.Authenticator.Authorize).
func (c *Console) may(q *request, p *meta.Project, act auth.Action) bool {
	return c.d.Auth.Authorize(q.r.Context(), q.principal(), p, act) == nil
}

// page adapts a page function: errors are rendered as the error page with their status.
func (c *Console) page(fn func(*request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := &request{w: w, r: r, sess: c.sessions.get(r)}
		if err := fn(q); err != nil {
			c.fail(q, err)
		}
	}
}

// change adapts a state-changing POST: it needs a session whose CSRF token the form carries, and a
// same-origin Origin header when the browser sends one. Without them the answer is 403 and nothing
// changes.
func (c *Console) change(fn func(*request) error) http.HandlerFunc {
	return c.page(func(q *request) error {
		r := q.r
		r.Body = http.MaxBytesReader(q.w, r.Body, 1<<20)
		if q.sess == nil {
			return errcode.ErrAPIUnauth.WithMessage("log in first")
		}
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
			return errcode.ErrForbidden.WithMessage("cross-origin request refused")
		}
		if !q.sess.validCSRF(r) {
			return errcode.ErrForbidden.WithMessage("missing or invalid CSRF token: reload the page and try again")
		}
		return fn(q)
	})
}

// fail renders err. Anonymous visitors asked to log in are sent to the login page.
func (c *Console) fail(q *request, err error) {
	e := errcode.As(err)
	if e == nil {
		e = errcode.ErrInternal.Wrap(err, "internal error")
	}
	if e.Code.Status >= 500 {
		c.d.Log.Error("console request failed", "method", q.r.Method, "path", q.r.URL.Path, "err", err)
	}
	if e.Code.Status == http.StatusUnauthorized && q.r.Method == http.MethodGet && q.sess == nil {
		http.Redirect(q.w, q.r, "/login?next="+urlQueryEscape(q.r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	msg := e.Message
	if msg == "" || e.Code.Status >= 500 {
		msg = e.Code.Message
	}
	c.render(q, e.Code.Status, "error", map[string]any{"Title": "Error", "Status": e.Code.Status, "Message": msg})
}

// redirect answers a successful POST with 303 to the page to show next.
func redirect(q *request, to string) error {
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
	return nil
}
