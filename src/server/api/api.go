// Package api serves Berth's Harbor-compatible REST API under /api/v2.0/: ping, health, projects and
// their metadata, upstream registries, and, when their dependencies are given, repositories and
// artifacts, quotas and project summaries (quotas.go), the storage volume, and garbage collection (gc.go). Request and response bodies follow Harbor v2.0.
//
// Every route is listed once, in routes.go. Handlers return their error; one adapter (handle, in
// routes.go) writes it with errcode.Serve in Harbor's shape {"errors":[{"code","message"}]} and the
// code's status. Validation and credential handling live in
// package admin, the page rule in package paging: handlers decode, call, and encode.
//
// Callers authenticate with HTTP Basic as local users. Project endpoints ask auth.Authenticator.Authorize
// for the action they perform (see docs/access.md); users, registries and the audit log are for system
// administrators (a user may read and change its own account). Anonymous callers may list and read
// public projects. Registry secrets are sealed (admin.Credentials) before they reach the store and
// are never returned (Harbor's "*****" stands in for them) nor logged, and a stored secret is only ever
// sent to the type, URL and TLS settings it was saved with: changing those needs the credential again.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"

	"github.com/berth-registry/berth/src/pkg/admin"
	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/robot"
	"github.com/berth-registry/berth/src/pkg/secret"
)

// Prefix is the path prefix of every endpoint.
const Prefix = "/api/v2.0"

// Checker is a dependency whose health GET /api/v2.0/health reports.
type Checker interface {
	// Ping returns nil when the dependency answers.
	Ping(ctx context.Context) error
}

// CheckerFunc adapts a function to Checker, e.g. for go-redis:
// api.CheckerFunc(func(ctx context.Context) error { return rdb.Ping(ctx).Err() }).
type CheckerFunc func(ctx context.Context) error

// Ping calls f.
func (f CheckerFunc) Ping(ctx context.Context) error { return f(ctx) }

// Component names a Checker in the health report. Harbor's names are "database" and "redis".
type Component struct {
	Name    string
	Checker Checker
}

// RegistryPinger checks upstream registry endpoints for POST /registries/ping and before a registry is
// saved (as Harbor does); it is an admin.Pinger.
type RegistryPinger interface {
	// PingRegistry returns nil when the registry r answers its API base endpoint with r's settings and
	// credentials. r.AccessSecret is plaintext. r.ID is 0 for a registry not stored yet. The admin is
	// told the kind and status of a *registry.Error (admin.Check); the error text is logged, so it must
	// not contain the secret.
	PingRegistry(ctx context.Context, r meta.Registry) error
}

// RegistryPingerFunc adapts a function to RegistryPinger.
type RegistryPingerFunc func(ctx context.Context, r meta.Registry) error

// PingRegistry calls f.
func (f RegistryPingerFunc) PingRegistry(ctx context.Context, r meta.Registry) error {
	return f(ctx, r)
}

// RepositoryCounter counts a project's repositories; meta.ArtifactStore satisfies it.
type RepositoryCounter interface {
	// CountRepositories returns the number of repositories in a project.
	CountRepositories(ctx context.Context, projectID int64) (int64, error)
}

// Deps are the API's dependencies. All but Health and Log are required.
type Deps struct {
	Projects     meta.ProjectStore
	Registries   meta.RegistryStore
	Repositories RepositoryCounter
	Box          *secret.Box
	Auth         *auth.Authenticator
	Pinger       RegistryPinger
	Health       []Component // reported after "core", in this order
	// Draining, when set and true, makes GET /api/v2.0/health answer 503 with "core" unhealthy: the node
	// is shutting down and a load balancer should send it no new requests (nil: never draining).
	Draining func() bool
	Log      *slog.Logger

	// Artifacts, when set, serves the repository and artifact endpoints (repositories.go, artifacts.go).
	Artifacts ArtifactSource
	// Robots, when set, serves the robot account endpoints (robots.go); RobotPrefix starts every robot's
	// name (default robot.DefaultPrefix).
	Robots      meta.RobotStore
	RobotPrefix string

	// Users and Members, when both set, serve /users and /projects/{project}/members (users.go,
	// members.go), and the creator of a project becomes its projectAdmin.
	Users   meta.UserStore
	Members meta.MemberStore
	// AuditLog, when set, serves GET /audit-logs (auditlogs.go).
	AuditLog meta.AuditStore
	// Audit, when set, records project, registry, member, user and artifact changes made through the API.
	Audit auth.AuditSink
	// Retentions, when set, serves the retention endpoints (retentions.go), and new proxy-cache
	// projects get the default retention policy.
	Retentions *Retentions
	// Usage, when set, serves the quota endpoints and the project summary (quotas.go).
	Usage UsageReader
	// Volumes, when set, serves GET /systeminfo/volumes.
	Volumes VolumeStat

	// GC, when set, serves the garbage collection endpoints (gc.go).
	GC *GCDeps
}

// API is the http.Handler of the REST API. Build it with New.
type API struct {
	projects    meta.ProjectStore
	registries  meta.RegistryStore
	repos       RepositoryCounter
	creds       *admin.Credentials
	auth        *auth.Authenticator
	artifacts   ArtifactSource
	robots      meta.RobotStore
	robotPrefix string
	users       meta.UserStore
	members     meta.MemberStore
	auditLog    meta.AuditStore
	audit       auth.AuditSink
	draining    func() bool
	retentions  *Retentions
	usage       UsageReader
	volumes     VolumeStat
	gc          *GCDeps
	health      []Component
	log         *slog.Logger
	mux         *http.ServeMux

	// status holds the outcome of the latest check of each registry in this process (int64 -> string).
	// Berth has no periodic registry health check, so a registry not checked since start is "unknown".
	status sync.Map
}

var (
	_ http.Handler   = (*API)(nil)
	_ Checker        = CheckerFunc(nil)
	_ RegistryPinger = RegistryPingerFunc(nil)
)

// New returns the API handler. Mount it at "/api/" (it answers every path under Prefix itself and
// NOT_FOUND elsewhere).
func New(d Deps) (*API, error) {
	switch {
	case d.Projects == nil, d.Registries == nil, d.Repositories == nil:
		return nil, errors.New("api: Projects, Registries and Repositories are required")
	case d.Box == nil, d.Auth == nil, d.Pinger == nil:
		return nil, errors.New("api: Box, Auth and Pinger are required")
	case d.GC != nil && (d.GC.Store == nil || d.GC.Runner == nil):
		return nil, errors.New("api: GC needs a Store and a Runner")
	}
	if d.Retentions != nil && (d.Retentions.Store == nil || d.Retentions.Runner == nil) {
		return nil, errors.New("api: Retentions needs a Store and a Runner")
	}
	for _, c := range d.Health {
		if c.Name == "" || c.Checker == nil {
			return nil, errors.New("api: a health component needs a name and a checker")
		}
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	creds, err := admin.NewCredentials(d.Box, d.Pinger, log)
	if err != nil {
		return nil, err
	}
	a := &API{
		projects: d.Projects, registries: d.Registries, repos: d.Repositories, creds: creds, auth: d.Auth,
		artifacts: d.Artifacts, health: d.Health, draining: d.Draining, retentions: d.Retentions, usage: d.Usage, volumes: d.Volumes, gc: d.GC, log: log, mux: http.NewServeMux(),
		users: d.Users, members: d.Members, auditLog: d.AuditLog, audit: d.Audit,
		robots: d.Robots, robotPrefix: d.RobotPrefix,
	}
	if a.robotPrefix == "" {
		a.robotPrefix = robot.DefaultPrefix
	}
	a.routes()
	return a, nil
}

// ServeHTTP routes the request. A state-changing request without a JSON Content-Type is refused with 415
// UNSUPPORTED_MEDIA_TYPE (requireJSON, the CSRF guard); paths and methods without a route get NOT_FOUND or a 405 UNSUPPORTED
// (with Allow) in the JSON error shape instead of the mux's plain-text answers.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.mux.Handler(r); pattern != "" {
		if err := requireJSON(r); err != nil {
			a.fail(w, r, err)
			return
		}
		a.mux.ServeHTTP(w, r)
		return
	}
	probe := &statusProbe{header: http.Header{}}
	a.mux.ServeHTTP(probe, r)
	switch probe.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", probe.header.Get("Allow"))
		a.fail(w, r, errcode.ErrUnsupported.WithMessage("method %s is not allowed on %s", r.Method, r.URL.Path))
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		a.mux.ServeHTTP(w, r) // path cleaning redirect
	default:
		a.fail(w, r, errcode.ErrNotFound.WithMessage("no API endpoint at %s", r.URL.Path))
	}
}

// statusProbe records the status and headers the mux's fallback handler would write.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}
func (p *statusProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}

// fail writes err to the client.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	errcode.Serve(w, r, a.log, err)
}

// principal authenticates the caller: a user, or anonymous (zero Principal). Wrong credentials are
// UNAUTHORIZED.
func (a *API) principal(r *http.Request) (auth.Principal, error) {
	return a.auth.Authenticate(r)
}

// requireAdmin returns nil for a system administrator, UNAUTHORIZED for anonymous callers and FORBIDDEN otherwise.
func (a *API) requireAdmin(r *http.Request) error {
	_, err := a.adminCaller(r)
	return err
}

// adminCaller returns the caller when it is a system administrator, else requireAdmin's error.
func (a *API) adminCaller(r *http.Request) (auth.Principal, error) {
	p, err := a.principal(r)
	if err == nil {
		err = adminOnly(p)
	}
	return p, err
}

func adminOnly(p auth.Principal) error {
	switch {
	case p.Admin:
		return nil
	case p.Name == "":
		return errcode.ErrAPIUnauth.WithMessage("authentication required")
	default:
		return errcode.ErrForbidden.WithMessage("only system administrators may do this")
	}
}
