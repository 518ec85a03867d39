// Package registry serves the OCI distribution API under /v2/ on top of a content.Service.
//
// Every request is routed, authenticated (HTTP Basic through auth.Authenticator), tied to its project (the
// first component of the repository name) and authorized: reads need auth.Pull, writes auth.Push, deletes
// auth.Delete. Errors are written once, through errcode.Serve, before any body byte; a failure after the
// first body byte is logged and the connection is left to end short.
//
// The package knows nothing of databases or caches: it talks to a content.Service and a ProjectResolver.
package registry

import (
	"context"
	_ "crypto/sha256" // registers sha256 with go-digest
	_ "crypto/sha512" // registers sha512 with go-digest
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/reference"
	"github.com/berth-registry/berth/src/server/mirror"
)

// Response headers of the distribution API.
const (
	headerAPIVersion     = "Docker-Distribution-API-Version"
	headerContentDigest  = "Docker-Content-Digest"
	headerUploadUUID     = "Docker-Upload-UUID"
	headerUploadSession  = "Blob-Upload-Session-ID"
	headerSubject        = "OCI-Subject"
	headerFiltersApplied = "OCI-Filters-Applied"
	headerCache          = "X-Cache"
	headerNamespace      = "OCI-Namespace"
)

// ProjectResolver finds a project by name; a missing project is an error wrapping meta.ErrNotFound.
type ProjectResolver interface {
	GetProjectByName(ctx context.Context, name string) (*meta.Project, error)
}

// Options tune the handler. The zero value is usable.
type Options struct {
	// Mirror routes registry-mirror requests: ?ns=<registry host>, and names whose first segment is no
	// project (nil: every name is <project>/<repository>). See package mirror.
	Mirror MirrorRouter
	// AnonymousBase answers GET /v2/ with 200 to anonymous callers instead of the Basic challenge. Docker's
	// registry-mirrors need it: Docker pings /v2/ first and, holding no credentials for the mirror, cannot
	// answer a Basic challenge, so it would send nothing more. Clients then get the challenge from the
	// request that needs credentials (a push, a private project).
	AnonymousBase bool
	// Bearer, when set, makes the UNAUTHORIZED challenge Docker's token authentication
	// (https://distribution.github.io/distribution/spec/auth/token/): Bearer with the token service's
	// realm, the service name and the scope the request needs. Basic credentials stay accepted.
	// Without it the challenge is Basic.
	Bearer *BearerChallenge
	// Audit, when set, records pushes, deletes and tag deletes (and pulls with AuditPulls) without
	// blocking the request.
	Audit auth.AuditSink
	// AuditPulls records manifest pulls (GET) in Audit too. They are the bulk of the traffic.
	AuditPulls bool
}

// BearerChallenge names the token service in challenges.
type BearerChallenge struct {
	// Realm is the token endpoint's URL. "" derives it from the request: its scheme and Host, and
	// RealmPath.
	Realm     string
	RealmPath string
	Service   string
}

// MirrorRouter decides which project serves a repository name requested with the ns query parameter
// ("" when absent). A zero Route means the name is <project>/<repository> as usual; an error wrapping
// mirror.ErrUnknownNamespace is answered 404 NAME_UNKNOWN.
type MirrorRouter interface {
	Route(ctx context.Context, ns, name string) (mirror.Route, error)
}

// Handler serves /v2/. Build it with New.
type Handler struct {
	svc        content.Service
	projects   ProjectResolver
	authn      *auth.Authenticator
	log        *slog.Logger
	mirror     MirrorRouter
	openBase   bool
	bearer     *BearerChallenge
	audit      auth.AuditSink
	auditPulls bool
	table      map[reference.Kind]map[string]endpoint
	// bodies recycles the buffers referrers answers are encoded into (*[]byte).
	bodies sync.Pool
}

var _ http.Handler = (*Handler)(nil)

// New returns the /v2/ handler. log receives 5xx causes and failures after a response started (nil:
// discarded).
func New(svc content.Service, projects ProjectResolver, authn *auth.Authenticator, log *slog.Logger, opts Options) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{svc: svc, projects: projects, authn: authn, log: log, mirror: opts.Mirror, openBase: opts.AnonymousBase,
		bearer: opts.Bearer, audit: opts.Audit, auditPulls: opts.AuditPulls}
	h.table = map[reference.Kind]map[string]endpoint{}
	for k := reference.KindBase; k <= reference.KindReferrers; k++ {
		h.table[k] = h.endpoints(k)
	}
	return h
}

// request is what a route handler gets: the parsed route, the caller and (for repository routes) the
// repository with its project.
type request struct {
	route reference.Route
	who   auth.Principal
	repo  content.Repo
	// ns is the ns query parameter the request carried ("" when none). Answers that name the repository
	// or link to a next page use route.Name and ns, the name as the client asked for it, not repo.Name:
	// through a mirror route the two differ (library/app?ns=docker.io is served by hubproxy/library/app).
	ns string
}

// handlerFunc serves one route and method. A returned error is written with errcode.Serve, so it must only
// be returned before anything was written.
type handlerFunc func(w http.ResponseWriter, r *http.Request, req *request) error

// endpoint is a method of a route with the action it needs.
type endpoint struct {
	act    auth.Action
	handle handlerFunc
}

// endpoints returns the methods a route of kind answers, each with its handler and the action it needs
// (nil for an unknown kind).
func (h *Handler) endpoints(kind reference.Kind) map[string]endpoint {
	switch kind {
	case reference.KindBase:
		return reads(h.base)
	case reference.KindCatalog:
		return reads(h.catalog)
	case reference.KindTags:
		return reads(h.tags)
	case reference.KindManifest:
		eps := reads(h.getManifest)
		eps[http.MethodPut] = endpoint{auth.Push, h.putManifest}
		eps[http.MethodDelete] = endpoint{auth.Delete, h.deleteManifest}
		return eps
	case reference.KindBlob:
		eps := reads(h.getBlob)
		eps[http.MethodDelete] = endpoint{auth.Delete, h.deleteBlob}
		return eps
	case reference.KindUploadStart:
		return map[string]endpoint{http.MethodPost: {auth.Push, h.startUpload}}
	case reference.KindUpload:
		// Status and cancel of an upload are part of pushing it.
		return map[string]endpoint{
			http.MethodGet:    {auth.Push, h.uploadStatus},
			http.MethodPatch:  {auth.Push, h.patchUpload},
			http.MethodPut:    {auth.Push, h.putUpload},
			http.MethodDelete: {auth.Push, h.cancelUpload},
		}
	case reference.KindReferrers:
		return reads(h.referrers)
	}
	return nil
}

// reads returns the endpoints of a readable route: GET and HEAD, both served by get and both needing
// auth.Pull. The map is new on each call; a route that is also written adds its other methods to it.
func reads(get handlerFunc) map[string]endpoint {
	return map[string]endpoint{http.MethodGet: {auth.Pull, get}, http.MethodHead: {auth.Pull, get}}
}

// Header values set on most responses, shared between responses to spare an allocation each. net/http
// only reads header values; nothing here modifies a value slice in place.
var (
	apiVersionValue = []string{"registry/2.0"}
	indexTypeValue  = []string{ocispec.MediaTypeImageIndex}
	cacheValues     = func() map[string][]string {
		m := map[string][]string{}
		for _, v := range []string{content.CacheHit, content.CacheMiss, content.CacheStale, content.CacheLocal} {
			m[v] = []string{v}
		}
		return m
	}()
)

// ServeHTTP routes, authenticates, authorizes and serves one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header()[headerAPIVersion] = apiVersionValue
	if err := h.serve(w, r); err != nil {
		if h.bearer != nil {
			h.challenge(w, r, err)
		}
		errcode.Serve(w, r, h.log, err)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	rt, err := h.parse(r.URL.Path)
	if err != nil {
		return routeError(err)
	}
	eps := h.table[rt.Kind]
	ep, ok := eps[r.Method]
	if !ok {
		w.Header().Set("Allow", strings.Join(slices.Sorted(maps.Keys(eps)), ", "))
		return errcode.ErrUnsupported.WithMessage("method %s not allowed here", r.Method)
	}
	who, err := h.authn.Authenticate(r)
	if err != nil {
		return err
	}
	req := &request{route: rt, who: who}
	switch rt.Kind {
	case reference.KindBase:
		// Anonymous callers get the challenge so that clients (docker, oras, crane, cosign, notation)
		// send their credentials; pulls of public projects still work without any.
		if who.Name == "" && !who.Token && !h.openBase {
			return errcode.ErrUnauthorized.New()
		}
	case reference.KindCatalog:
		if who.Name == "" || (who.Token && !grantsCatalog(who)) {
			return errcode.ErrUnauthorized.New()
		}
		if !who.Admin && !grantsCatalog(who) {
			return errcode.ErrDenied.WithMessage("the catalog is for administrators")
		}
	default:
		repo, ns, err := h.route(r, who, rt.Name)
		if err != nil {
			return err
		}
		act := ep.act
		if act == auth.Delete && rt.Kind == reference.KindManifest && rt.Tag != "" {
			act = auth.TagDelete // DELETE of a manifest by tag removes only the tag
		}
		if err := h.authn.AuthorizeRepository(r.Context(), who, repo.Project, repo.Name, act); err != nil {
			if repo.Name != rt.Name { // routed by the mirror router: the token must name the project's repository
				return &routedError{error: err, name: repo.Name}
			}
			return err
		}
		if ns != "" {
			// The distribution-spec's "Registry Proxying" section: name the namespace served.
			w.Header().Set(headerNamespace, ns)
		}
		req.repo = repo
		if r.URL.RawQuery != "" {
			req.ns = r.URL.Query().Get("ns")
		}
	}
	return ep.handle(w, r, req)
}

// parse is reference.ParseV2Path, except that with a mirror router a one-component name (Docker Hub's
// "nginx", sent with ns=docker.io) is accepted: the router decides whether some project serves it.
func (h *Handler) parse(path string) (reference.Route, error) {
	rt, err := reference.ParseV2Path(path)
	if err == nil || h.mirror == nil || !errors.Is(err, reference.ErrNameNoProject) {
		return rt, err
	}
	// Parse it under a placeholder project, then drop the placeholder.
	rt, err = reference.ParseV2Path("/v2/x/" + strings.TrimPrefix(path, "/v2/"))
	rt.Name = strings.TrimPrefix(rt.Name, "x/")
	return rt, err
}

// route resolves the repository of a request: through the mirror router first, when there is one,
// then as <project>/<repository>. ns is the namespace a mirror route served ("" otherwise).
func (h *Handler) route(r *http.Request, who auth.Principal, name string) (content.Repo, string, error) {
	if h.mirror == nil {
		repo, err := h.repository(r.Context(), who, name)
		return repo, "", err
	}
	var ns string
	if r.URL.RawQuery != "" {
		ns = r.URL.Query().Get("ns")
	}
	mr, err := h.mirror.Route(r.Context(), ns, name)
	if errors.Is(err, mirror.ErrUnknownNamespace) {
		return content.Repo{}, "", errcode.ErrNameUnknown.WithMessage("no project mirrors namespace %s", ns).
			WithDetail(map[string]string{"name": name, "ns": ns})
	}
	if err != nil {
		return content.Repo{}, "", errcode.ErrUnknown.Wrap(err, "routing mirror request")
	}
	if mr.Project == "" {
		repo, err := h.repository(r.Context(), who, name)
		return repo, "", err
	}
	repo, err := h.repository(r.Context(), who, mr.Project+"/"+mr.Path)
	return repo, mr.Namespace, err
}

// repository resolves name's project. A missing project is NAME_UNKNOWN for an authenticated caller and
// UNAUTHORIZED for an anonymous one (who may see more after logging in).
func (h *Handler) repository(ctx context.Context, who auth.Principal, name string) (content.Repo, error) {
	project, path, ok := strings.Cut(name, "/")
	if !ok {
		return content.Repo{}, errcode.ErrNameInvalid.WithMessage("repository name %q must be <project>/<repository>", name).
			WithDetail(map[string]string{"name": name})
	}
	p, err := h.projects.GetProjectByName(ctx, project)
	if errors.Is(err, meta.ErrNotFound) {
		if who.Name == "" {
			return content.Repo{}, errcode.ErrUnauthorized.New()
		}
		return content.Repo{}, errcode.ErrNameUnknown.WithMessage("project %s not found", project).
			WithDetail(map[string]string{"name": name})
	}
	if err != nil {
		return content.Repo{}, errcode.ErrUnknown.Wrap(err, "resolving project %s", project)
	}
	return content.Repo{Project: p, Name: name, Path: path}, nil
}

// record adds an audit entry for a change (or, with auditPulls, a pull) of resource in repo.
func (h *Handler) record(req *request, resource, resourceType, op string) {
	if h.audit == nil {
		return
	}
	h.audit.Record(meta.AuditEntry{ProjectID: req.repo.Project.ID, Resource: resource, ResourceType: resourceType,
		Operation: op, Username: req.who.Name, OpTime: time.Now().UTC()})
}

// base answers GET /v2/ for an authenticated caller.
func (h *Handler) base(w http.ResponseWriter, r *http.Request, _ *request) error {
	h.writeJSON(w, r, http.StatusOK, struct{}{})
	return nil
}

// writeJSON writes v with Content-Length; HEAD gets the headers only.
func (h *Handler) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	h.writeBody(w, r, status, "application/json", v)
}

func (h *Handler) writeBody(w http.ResponseWriter, r *http.Request, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		errcode.Serve(w, r, h.log, errcode.ErrUnknown.Wrap(err, "encoding response"))
		return
	}
	h.writeRaw(w, r, status, contentType, body)
}

// writeRaw answers status with body, already encoded as contentType.
func (h *Handler) writeRaw(w http.ResponseWriter, r *http.Request, status int, contentType string, body []byte) {
	hdr := w.Header()
	if contentType == ocispec.MediaTypeImageIndex {
		hdr["Content-Type"] = indexTypeValue
	} else {
		hdr.Set("Content-Type", contentType)
	}
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		if _, err := w.Write(body); err != nil { //nolint:gosec // G705: body is JSON sent with its own Content-Type (an OCI index or manifest), never HTML
			h.log.DebugContext(r.Context(), "writing response failed", "path", r.URL.Path, "err", err)
		}
	}
}

// noContent answers status with an empty body.
func noContent(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

// detach returns a context for cleanup that outlives a cancelled request, bounded in time.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}
