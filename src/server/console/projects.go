package console

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

// projectRow is one line of the projects table.
type projectRow struct {
	*meta.Project
	Registry  *meta.Registry // nil for a local project
	RepoCount int64
	Usage     int64  // bytes of distinct blobs and manifests (meta.RepositoryStore.ProjectUsage)
	Freshness string // proxy_referrer_cache_seconds, "" for the server default
}

// registriesByID reads every registry (there are few).
func (c *Console) registriesByID(ctx context.Context) (map[int64]*meta.Registry, []*meta.Registry, error) {
	list, _, err := c.d.Registries.ListRegistries(ctx, "", 0, 0)
	if err != nil {
		return nil, nil, errcode.ErrInternal.Wrap(err, "listing registries")
	}
	byID := make(map[int64]*meta.Registry, len(list))
	for _, r := range list {
		byID[r.ID] = r
	}
	return byID, list, nil
}

func (c *Console) row(ctx context.Context, p *meta.Project, regs map[int64]*meta.Registry) (projectRow, error) {
	_, n, err := c.d.Artifacts.ListProjectRepositories(ctx, p.ID, "", false, 0, 1)
	if err != nil {
		return projectRow{}, errcode.ErrInternal.Wrap(err, "counting repositories")
	}
	usage, err := c.d.Artifacts.ProjectUsage(ctx, p.ID)
	if err != nil {
		return projectRow{}, errcode.ErrInternal.Wrap(err, "reading storage used")
	}
	return projectRow{Project: p, Registry: regs[p.RegistryID], RepoCount: n, Usage: usage,
		Freshness: p.Metadata[meta.MetaProxyReferrerCacheSecond]}, nil
}

// listProjects shows the projects the visitor may read, filtered by ?q (a name substring).
func (c *Console) listProjects(q *request) error {
	ctx := q.r.Context()
	search := strings.TrimSpace(q.r.URL.Query().Get("q"))
	all, _, err := c.d.Projects.ListProjects(ctx, search, 0, 0)
	if err != nil {
		return errcode.ErrInternal.Wrap(err, "listing projects")
	}
	regs, regList, err := c.registriesByID(ctx)
	if err != nil {
		return err
	}
	rows := []projectRow{}
	for _, p := range all {
		if !c.may(q, p, auth.Pull) {
			continue
		}
		row, err := c.row(ctx, p, regs)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	c.render(q, http.StatusOK, "projects", map[string]any{"Title": "Projects", "Projects": rows, "Query": search,
		"Registries": regList})
	return nil
}

// createProject creates a local or proxy-cache project from the form, with the API's rules.
func (c *Console) createProject(q *request) error {
	if !q.admin() {
		return errcode.ErrForbidden.WithMessage("only the admin may create projects")
	}
	f := q.r.PostForm
	name := strings.TrimSpace(f.Get("name"))
	if err := admin.ValidateProjectName(name); err != nil {
		return err
	}
	p := &meta.Project{Name: name, StorageLimit: -1, Metadata: map[string]string{meta.MetaPublic: strconv.FormatBool(f.Get("public") == "on")}}
	if id := f.Get("registry_id"); id != "" && id != "0" {
		n, err := admin.ParseID("registry", id)
		if err != nil {
			return err
		}
		if _, err := c.d.Registries.GetRegistry(q.r.Context(), n); err != nil {
			return errcode.ErrBadRequest.WithMessage("registry %d does not exist", n)
		}
		p.RegistryID = n
		if err := proxySettings(p, f.Get("proxy_referrer_api") == "on", f.Get("cache_seconds")); err != nil {
			return err
		}
	}
	_, err := c.d.Projects.CreateProject(q.r.Context(), p)
	switch {
	case errors.Is(err, meta.ErrConflict):
		return errcode.ErrConflict.WithMessage("a project named %s already exists", name)
	case err != nil:
		return errcode.ErrInternal.Wrap(err, "creating project")
	}
	if c.d.ProjectCreated != nil {
		c.d.ProjectCreated(q.r.Context(), p)
	}
	return redirect(q, "/projects/"+name)
}

// proxySettings sets the Proxy Referrer API toggle and the referrers cache freshness ("" = the server
// default) with the API's metadata rules.
func proxySettings(p *meta.Project, toggle bool, seconds string) error {
	p.Metadata[meta.MetaProxyReferrerAPI] = strconv.FormatBool(toggle)
	seconds = strings.TrimSpace(seconds)
	if seconds == "" {
		delete(p.Metadata, meta.MetaProxyReferrerCacheSecond)
		return nil
	}
	v, err := admin.NormalizeMetadata(meta.MetaProxyReferrerCacheSecond, seconds)
	if err != nil {
		return errcode.ErrBadRequest.WithMessage("referrers cache freshness must be a whole number of seconds, 0 or more")
	}
	p.Metadata[meta.MetaProxyReferrerCacheSecond] = v
	return nil
}

// readable returns the project when the visitor may pull from it (auth.Authenticator.Authorize).
// Anonymous visitors get UNAUTHORIZED for a private or a missing project alike (the API's rule).
func (c *Console) readable(q *request) (*meta.Project, error) {
	return c.projectFor(q, auth.Pull)
}

// projectFor returns the project of the path when the visitor may perform act on it.
func (c *Console) projectFor(q *request, act auth.Action) (*meta.Project, error) {
	p, err := c.d.Projects.GetProjectByName(q.r.Context(), q.r.PathValue("project"))
	switch {
	case err != nil && !errors.Is(err, meta.ErrNotFound):
		return nil, errcode.ErrInternal.Wrap(err, "reading project")
	case q.admin() && err != nil:
		return nil, errcode.ErrNotFound.WithMessage("project %s not found", q.r.PathValue("project"))
	case q.admin():
		return p, nil
	case err != nil && q.sess != nil:
		return nil, errcode.ErrNotFound.WithMessage("project %s not found", q.r.PathValue("project"))
	case err != nil || !c.may(q, p, act):
		if q.sess != nil {
			return nil, errcode.ErrForbidden.WithMessage("you may not do this in this project")
		}
		return nil, errcode.ErrAPIUnauth.WithMessage("log in to see this project")
	}
	return p, nil
}

const repoPageSize = 50

// showProject shows a project's repositories (?q, ?page) and, for the admin, its configuration.
func (c *Console) showProject(q *request) error {
	p, err := c.readable(q)
	if err != nil {
		return err
	}
	ctx := q.r.Context()
	regs, _, err := c.registriesByID(ctx)
	if err != nil {
		return err
	}
	row, err := c.row(ctx, p, regs)
	if err != nil {
		return err
	}
	search := strings.TrimSpace(q.r.URL.Query().Get("q"))
	pg := pageNumber(q.r)
	repos, total, err := c.d.Artifacts.ListProjectRepositories(ctx, p.ID, search, false, (pg-1)*repoPageSize, repoPageSize)
	if err != nil {
		return errcode.ErrInternal.Wrap(err, "listing repositories")
	}
	type repoRow struct {
		*meta.Repository
		Path string
	}
	rows := make([]repoRow, len(repos))
	for i, r := range repos {
		rows[i] = repoRow{Repository: r, Path: strings.TrimPrefix(r.Name, p.Name+"/")}
	}
	c.render(q, http.StatusOK, "project", map[string]any{"Title": "Project " + p.Name, "P": row, "Repos": rows,
		"Query": search, "Pager": newPager(q.r, pg, repoPageSize, total), "Saved": q.r.URL.Query().Get("saved") != ""})
	return nil
}

// configureProject saves publicity, the Proxy Referrer API toggle and the cache freshness. Like a PUT
// through the API, the change applies to the next request.
func (c *Console) configureProject(q *request) error {
	p, err := c.projectFor(q, auth.MetadataWrite)
	if err != nil {
		return err
	}
	f := q.r.PostForm
	p.Metadata[meta.MetaPublic] = strconv.FormatBool(f.Get("public") == "on")
	if p.IsProxy() {
		if err := proxySettings(p, f.Get("proxy_referrer_api") == "on", f.Get("cache_seconds")); err != nil {
			return err
		}
	}
	if err := c.d.Projects.UpdateProject(q.r.Context(), p); err != nil {
		return errcode.ErrInternal.Wrap(err, "saving project")
	}
	return redirect(q, "/projects/"+p.Name+"?saved=1")
}
