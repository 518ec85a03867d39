// Package token serves the registry's token endpoint (GET and POST /service/token) as Docker's token
// authentication specification describes: https://distribution.github.io/distribution/spec/auth/token/
// and, for POST, https://distribution.github.io/distribution/spec/auth/oauth/ (grant_type=password).
// The caller authenticates with HTTP Basic (or the form's username and password) or not at all; the
// token grants the requested scopes the caller may use, and silently leaves out the others.
package token

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/token"
)

// Path is where the endpoint is mounted.
const Path = "/service/token"

// maxScopes bounds the scopes of one request: each costs a project lookup.
const maxScopes = 64

// ProjectResolver finds a project by name; a missing project is an error wrapping meta.ErrNotFound.
type ProjectResolver interface {
	GetProjectByName(ctx context.Context, name string) (*meta.Project, error)
}

// Handler serves Path.
type Handler struct {
	svc      *token.Service
	authn    *auth.Authenticator
	projects ProjectResolver
	log      *slog.Logger
}

// New returns the token endpoint.
func New(svc *token.Service, authn *auth.Authenticator, projects ProjectResolver, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{svc: svc, authn: authn, projects: projects, log: log}
}

type response struct {
	Token       string `json:"token,omitempty"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
	Scope       string `json:"scope,omitempty"`
}

// ServeHTTP answers GET (query service, scope...) and POST (form grant_type=password).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		errcode.Serve(w, r, h.log, err)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	var service string
	var scopes []string
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		service = q.Get("service")
		for _, v := range q["scope"] { // repeated, or several in one value separated by spaces
			scopes = append(scopes, strings.Fields(v)...)
		}
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			return errcode.ErrBadRequest.WithMessage("invalid form: %v", err)
		}
		if gt := r.PostForm.Get("grant_type"); gt != "password" {
			return errcode.ErrBadRequest.WithMessage("grant_type %q is not supported (only password)", gt)
		}
		service, scopes = r.PostForm.Get("service"), strings.Fields(r.PostForm.Get("scope"))
		if u := r.PostForm.Get("username"); u != "" {
			r.SetBasicAuth(u, r.PostForm.Get("password"))
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		return errcode.ErrUnsupported.WithMessage("method %s not allowed here", r.Method)
	}
	if service != "" && service != h.svc.Name() {
		return errcode.ErrBadRequest.WithMessage("unknown service %q", service)
	}
	if len(scopes) > maxScopes {
		return errcode.ErrBadRequest.WithMessage("at most %d scopes per request", maxScopes)
	}
	who, err := h.authn.Authenticate(r)
	if err != nil {
		return err
	}
	if who.Token {
		return errcode.ErrUnauthorized.WithMessage("a token cannot be exchanged for another; send credentials")
	}
	granted, err := h.grant(r.Context(), who, scopes)
	if err != nil {
		return err
	}
	t, err := h.svc.Issue(who.Name, granted)
	if err != nil {
		return errcode.ErrUnknown.Wrap(err, "issuing token")
	}
	res := response{AccessToken: t.Raw, ExpiresIn: int(t.ExpiresIn / time.Second), IssuedAt: t.IssuedAt.UTC().Format(time.RFC3339)}
	if r.Method == http.MethodGet {
		res.Token = t.Raw
	} else {
		names := make([]string, len(granted))
		for i, g := range granted {
			names[i] = g.String()
		}
		res.Scope = strings.Join(names, " ")
	}
	body, err := json.Marshal(res) //nolint:gosec // G117: the token response exists to carry the token
	if err != nil {
		return errcode.ErrUnknown.Wrap(err, "encoding token")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
	return nil
}

// grant returns the part of the requested scopes who may use. Scopes of one resource are merged.
func (h *Handler) grant(ctx context.Context, who auth.Principal, scopes []string) ([]token.ResourceActions, error) {
	var out []token.ResourceActions
	for _, s := range scopes {
		req, err := token.ParseScope(s)
		if err != nil {
			return nil, errcode.ErrBadRequest.WithMessage("%v", err)
		}
		var actions []string
		switch req.Type {
		case token.TypeRepository:
			if actions, err = h.repositoryActions(ctx, who, req); err != nil {
				return nil, err
			}
		case token.TypeRegistry:
			if req.Name == "catalog" && who.Admin && slices.Contains(req.Actions, token.ActionAll) {
				actions = []string{token.ActionAll}
			}
		}
		if len(actions) > 0 {
			out = merge(out, token.ResourceActions{Type: req.Type, Name: req.Name, Actions: actions})
		}
	}
	return out, nil
}

// repositoryActions returns the requested actions on a repository who may take. "*" is granted when
// pull, push and delete all are.
func (h *Handler) repositoryActions(ctx context.Context, who auth.Principal, req token.ResourceActions) ([]string, error) {
	projectName, _, ok := strings.Cut(req.Name, "/")
	if !ok {
		return nil, nil
	}
	p, err := h.projects.GetProjectByName(ctx, projectName)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, errcode.ErrUnknown.Wrap(err, "resolving project %s", projectName)
	}
	may := func(act auth.Action) bool { return h.authn.AuthorizeRepository(ctx, who, p, req.Name, act) == nil }
	var out []string
	for _, a := range req.Actions {
		var ok bool
		switch a {
		case token.ActionPull:
			ok = may(auth.Pull)
		case token.ActionPush:
			ok = may(auth.Push)
		case token.ActionDelete:
			ok = may(auth.Delete)
		case token.ActionAll:
			ok = may(auth.Pull) && may(auth.Push) && may(auth.Delete)
		}
		if ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// merge adds ra to list, joining the actions of an entry for the same resource.
func merge(list []token.ResourceActions, ra token.ResourceActions) []token.ResourceActions {
	for i := range list {
		if list[i].Type == ra.Type && list[i].Name == ra.Name {
			for _, a := range ra.Actions {
				if !slices.Contains(list[i].Actions, a) {
					list[i].Actions = append(list[i].Actions, a)
				}
			}
			return list
		}
	}
	return append(list, ra)
}
