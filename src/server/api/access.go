package api

import (
	"net/http"
	"time"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// apiAuthError turns the registry codes auth.Authenticator.Authorize answers with into the API's.
func apiAuthError(err error, who auth.Principal) error {
	switch {
	case err == nil:
		return nil
	case errcode.IsCode(err, errcode.ErrUnauthorized):
		return errcode.ErrAPIUnauth.WithMessage("authentication required")
	case errcode.IsCode(err, errcode.ErrDenied):
		return errcode.ErrForbidden.WithMessage("%s may not do this", nameOf(who))
	}
	return err
}

func nameOf(who auth.Principal) string {
	if who.Anonymous() {
		return "an anonymous caller"
	}
	return "user " + who.Name
}

// projectFor returns the project of the path ({project}, by name or ID) when the caller may perform
// act on it. Anonymous callers get UNAUTHORIZED for a private and a missing project alike; others a
// missing project as NOT_FOUND.
func (a *API) projectFor(r *http.Request, act auth.Action) (*meta.Project, auth.Principal, error) {
	ref, byName := projectRef(r)
	return a.projectRefFor(r, ref, byName, act)
}

// writableProject returns the project of the path when the caller may change its settings and metadata
// (auth.MetadataWrite).
func (a *API) writableProject(r *http.Request) (*meta.Project, error) {
	p, _, err := a.projectFor(r, auth.MetadataWrite)
	return p, err
}

// readablePathProject returns the project of the path when the caller may pull from it (auth.Pull).
func (a *API) readablePathProject(r *http.Request) (*meta.Project, error) {
	p, _, err := a.projectFor(r, auth.Pull)
	return p, err
}

func (a *API) projectRefFor(r *http.Request, ref string, byName bool, act auth.Action) (*meta.Project, auth.Principal, error) {
	who, err := a.principal(r)
	if err != nil {
		return nil, who, err
	}
	p, err := a.lookupProject(r.Context(), ref, byName)
	if err != nil {
		if errcode.IsCode(err, errcode.ErrNotFound) && who.Anonymous() {
			return nil, who, errcode.ErrAPIUnauth.WithMessage("authentication required")
		}
		return nil, who, err
	}
	if err := a.auth.Authorize(r.Context(), who, p, act); err != nil {
		return nil, who, apiAuthError(err, who)
	}
	return p, who, nil
}

// record adds an audit entry when an audit sink is configured.
func (a *API) record(who auth.Principal, projectID int64, resource, resourceType, op string) {
	if a.audit == nil {
		return
	}
	a.audit.Record(meta.AuditEntry{ProjectID: projectID, Resource: resource, ResourceType: resourceType,
		Operation: op, Username: who.Name, OpTime: time.Now().UTC()})
}

// requireUser returns the caller, or UNAUTHORIZED when anonymous.
func (a *API) requireUser(r *http.Request) (auth.Principal, error) {
	who, err := a.principal(r)
	if err == nil && who.Anonymous() {
		err = errcode.ErrAPIUnauth.WithMessage("authentication required")
	}
	return who, err
}

// recordFor records a system-level change by the caller of r (authenticated before: the check is cached).
func (a *API) recordFor(r *http.Request, resource, resourceType, op string) {
	if a.audit == nil {
		return
	}
	if who, err := a.principal(r); err == nil {
		a.record(who, 0, resource, resourceType, op)
	}
}
