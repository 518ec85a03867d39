package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/src/pkg/admin"
	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// projectReq is Harbor's ProjectReq. Pointers tell absent from zero; null metadata values are ignored.
type projectReq struct {
	ProjectName  *string            `json:"project_name"`
	Public       *bool              `json:"public"` // legacy, used when metadata.public is absent
	Metadata     map[string]*string `json:"metadata"`
	StorageLimit *int64             `json:"storage_limit"`
	RegistryID   *int64             `json:"registry_id"`
}

// projectJSON is the part of Harbor's Project model that Berth has.
type projectJSON struct {
	ProjectID    int64             `json:"project_id"`
	OwnerID      int64             `json:"owner_id"`
	OwnerName    string            `json:"owner_name"`
	Name         string            `json:"name"`
	RegistryID   int64             `json:"registry_id,omitempty"`
	CreationTime harborTime        `json:"creation_time"`
	UpdateTime   harborTime        `json:"update_time"`
	Deleted      bool              `json:"deleted"`
	RepoCount    int64             `json:"repo_count"`
	ChartCount   int64             `json:"chart_count"`
	Metadata     map[string]string `json:"metadata"`
	CVEAllowlist cveAllowlist      `json:"cve_allowlist"`
}

// cveAllowlist is always empty: Berth does not scan. Harbor clients expect the object.
type cveAllowlist struct {
	ID           int64      `json:"id"`
	ProjectID    int64      `json:"project_id"`
	Items        []struct{} `json:"items"`
	CreationTime harborTime `json:"creation_time"`
	UpdateTime   harborTime `json:"update_time"`
}

func (a *API) projectToJSON(ctx context.Context, p *meta.Project) (projectJSON, error) {
	n, err := a.repoCount(ctx, p)
	if err != nil {
		return projectJSON{}, err
	}
	return projectJSON{
		ProjectID: p.ID, OwnerID: 1, OwnerName: auth.AdminUser, Name: p.Name, RegistryID: p.RegistryID,
		CreationTime: harborTime(p.CreationTime), UpdateTime: harborTime(p.UpdateTime),
		RepoCount: n, Metadata: nonNil(p.Metadata),
		CVEAllowlist: cveAllowlist{ProjectID: p.ID, Items: []struct{}{},
			CreationTime: harborTime(p.CreationTime), UpdateTime: harborTime(p.UpdateTime)},
	}, nil
}

// projectRef returns the {project} path value and whether it names the project: true when the header
// X-Is-Resource-Name is true or the value is not a number, otherwise it is an ID (Harbor's rule).
func projectRef(r *http.Request) (string, bool) {
	v := r.PathValue("project")
	if _, err := strconv.ParseInt(v, 10, 64); err != nil {
		return v, true
	}
	return v, boolHeader(r, "X-Is-Resource-Name")
}

// lookupProject finds a project by name or by ID.
func (a *API) lookupProject(ctx context.Context, ref string, byName bool) (*meta.Project, error) {
	var p *meta.Project
	var err error
	if id, perr := strconv.ParseInt(ref, 10, 64); perr == nil && !byName {
		p, err = a.projects.GetProject(ctx, id)
	} else {
		p, err = a.projects.GetProjectByName(ctx, ref)
	}
	if err != nil {
		return nil, storeError(err, "project "+ref)
	}
	return p, nil
}

// readableProject returns the project when the caller may pull from it.
func (a *API) readableProject(r *http.Request, ref string, byName bool) (*meta.Project, error) {
	p, _, err := a.projectRefFor(r, ref, byName, auth.Pull)
	return p, err
}

// createProject creates a project for any logged-in user (Harbor's default project_creation_restriction
// "everyone"); only system administrators create proxy-cache projects. The creator becomes the project's
// projectAdmin.
func (a *API) createProject(w http.ResponseWriter, r *http.Request) error {
	who, req, err := authorizedBody[projectReq](w, r, a.requireUser)
	if err != nil {
		return err
	}
	p, err := a.newProject(r.Context(), &req)
	if err != nil {
		return err
	}
	if p.RegistryID != 0 && !who.Admin {
		return errcode.ErrForbidden.WithMessage("only system administrators may create proxy-cache projects")
	}
	id, err := a.projects.CreateProject(r.Context(), p)
	switch {
	case errors.Is(err, meta.ErrConflict):
		return errcode.ErrConflict.WithMessage("the project named %s already exists", p.Name)
	case errors.Is(err, meta.ErrNotFound): // the registry was deleted since newProject looked
		return errcode.ErrBadRequest.WithMessage("registry %d does not exist", p.RegistryID)
	case err != nil:
		return storeError(err, "project")
	}
	if err := a.addCreator(r, who, id); err != nil {
		return err
	}
	a.record(who, id, p.Name, "project", "create")
	if p.IsProxy() && a.retentions != nil {
		a.createDefaultRetention(r.Context(), p)
	}
	loc := strconv.FormatInt(id, 10)
	if boolHeader(r, "X-Resource-Name-In-Location") {
		loc = p.Name
	}
	return created(w, strings.TrimSuffix(r.URL.Path, "/")+"/"+loc)
}

// newProject validates a creation request (admin.NewProject) and checks that its registry exists.
func (a *API) newProject(ctx context.Context, req *projectReq) (*meta.Project, error) {
	p, err := admin.NewProject(admin.ProjectRequest(*req))
	if err != nil || p.RegistryID == 0 {
		return p, err
	}
	if _, err := a.registries.GetRegistry(ctx, p.RegistryID); err != nil {
		if errors.Is(err, meta.ErrNotFound) {
			return nil, errcode.ErrBadRequest.WithMessage("registry %d does not exist", p.RegistryID)
		}
		return nil, storeError(err, "registry")
	}
	return p, nil
}

// repoCount returns the number of repositories in p; a failure is INTERNAL_SERVER_ERROR.
func (a *API) repoCount(ctx context.Context, p *meta.Project) (int64, error) {
	n, err := a.repos.CountRepositories(ctx, p.ID)
	if err != nil {
		return 0, errcode.ErrInternal.Wrap(err, "counting repositories")
	}
	return n, nil
}

// getProject answers GET /projects/{project_name_or_id} for callers who may read the project.
func (a *API) getProject(w http.ResponseWriter, r *http.Request) error {
	return getJSON(w, r, a.readablePathProject, a.projectToJSON)
}

// headProject answers 200 when the project named by ?project_name exists (and the caller may read it).
func (a *API) headProject(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("project_name")
	if name == "" {
		return errcode.ErrBadRequest.WithMessage("project_name is required")
	}
	if _, err := a.readableProject(r, name, true); err != nil {
		return err
	}
	return emptyOK(w)
}

// updateProject merges metadata (keys present replace, others stay), and may set storage_limit;
// project_name is ignored (projects cannot be renamed) and registry_id cannot change.
func (a *API) updateProject(w http.ResponseWriter, r *http.Request) error {
	p, req, err := authorizedBody[projectReq](w, r, a.writableProject)
	if err != nil {
		return err
	}
	if req.RegistryID != nil && *req.RegistryID != 0 && *req.RegistryID != p.RegistryID {
		return errcode.ErrBadRequest.WithMessage("registry_id cannot be changed after the project was created")
	}
	if p.Metadata, err = admin.MergeMetadata(p.Metadata, req.Metadata); err != nil {
		return err
	}
	if _, ok := req.Metadata[meta.MetaPublic]; !ok && req.Public != nil {
		p.Metadata[meta.MetaPublic] = strconv.FormatBool(*req.Public)
	}
	if p.StorageLimit, err = admin.StorageLimit(req.StorageLimit, p.StorageLimit); err != nil {
		return err
	}
	return a.saveProject(w, r, p)
}

// deleteProject refuses with PRECONDITION (412) while the project holds repositories, as Harbor does.
func (a *API) deleteProject(w http.ResponseWriter, r *http.Request) error {
	p, who, err := a.projectFor(r, auth.ProjectDelete)
	if err != nil {
		return err
	}
	notEmpty := errcode.ErrPreconditions.WithMessage("the project contains repositories, can not be deleted")
	n, err := a.repoCount(r.Context(), p)
	if err != nil {
		return err
	}
	if n > 0 {
		return notEmpty
	}
	err = a.projects.DeleteProject(r.Context(), p.ID)
	if errors.Is(err, meta.ErrConflict) { // a repository appeared since the count
		return notEmpty
	}
	if err != nil {
		return storeError(err, "project "+p.Name)
	}
	a.auth.ForgetRoles() // SQLite may give the next project this ID again
	a.record(who, p.ID, p.Name, "project", "delete")
	return emptyOK(w)
}
