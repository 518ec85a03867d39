package api

import (
	"maps"
	"net/http"

	"github.com/berth-registry/berth/src/pkg/admin"
	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// metadataReadable returns the project of the path for a logged-in caller who may pull from it. The
// metadata endpoints stay closed to anonymous callers, public project or not, as before users existed.
func (a *API) metadataReadable(r *http.Request) (*meta.Project, error) {
	if _, err := a.requireUser(r); err != nil {
		return nil, err
	}
	p, _, err := a.projectFor(r, auth.Pull)
	return p, err
}

// listMetadata answers all metadata of the project as a JSON object.
func (a *API) listMetadata(w http.ResponseWriter, r *http.Request) error {
	p, err := a.metadataReadable(r)
	if err != nil {
		return err
	}
	return writeOK(w, nonNil(p.Metadata))
}

// getMetadata answers {name: value}, or {} when the project has no such metadata (as Harbor).
func (a *API) getMetadata(w http.ResponseWriter, r *http.Request) error {
	p, err := a.metadataReadable(r)
	if err != nil {
		return err
	}
	out := map[string]string{}
	name := r.PathValue("meta")
	if v, ok := p.Metadata[name]; ok {
		out[name] = v
	}
	return writeOK(w, out)
}

// addMetadata sets the pairs of a JSON object body (one or more; Harbor takes exactly one).
func (a *API) addMetadata(w http.ResponseWriter, r *http.Request) error {
	return a.setMetadata(w, r, "")
}

// updateMetadata sets the one pair named in the path; the body is {name: value}.
func (a *API) updateMetadata(w http.ResponseWriter, r *http.Request) error {
	return a.setMetadata(w, r, r.PathValue("meta"))
}

// setMetadata merges the body's pairs into the project, only the one named only when only != "".
func (a *API) setMetadata(w http.ResponseWriter, r *http.Request, only string) error {
	p, body, err := authorizedBody[map[string]*string](w, r, a.writableProject)
	if err != nil {
		return err
	}
	if only != "" {
		v := body[only]
		if v == nil {
			return errcode.ErrBadRequest.WithMessage("the body must set %q", only)
		}
		body = map[string]*string{only: v}
	}
	if len(body) == 0 {
		return errcode.ErrBadRequest.WithMessage("the body must set at least one metadata pair")
	}
	if p.Metadata, err = admin.MergeMetadata(p.Metadata, body); err != nil {
		return err
	}
	return a.saveProject(w, r, p)
}

// deleteMetadata removes one pair; removing an absent one succeeds.
func (a *API) deleteMetadata(w http.ResponseWriter, r *http.Request) error {
	p, err := a.writableProject(r)
	if err != nil {
		return err
	}
	p.Metadata = maps.Clone(p.Metadata)
	delete(p.Metadata, r.PathValue("meta"))
	return a.saveProject(w, r, p)
}

func (a *API) saveProject(w http.ResponseWriter, r *http.Request, p *meta.Project) error {
	if err := a.projects.UpdateProject(r.Context(), p); err != nil {
		return storeError(err, "project "+p.Name)
	}
	if a.audit != nil {
		if who, err := a.principal(r); err == nil {
			a.record(who, p.ID, p.Name, "project", "update")
		}
	}
	return emptyOK(w)
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
