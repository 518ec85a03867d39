package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/paging"
)

// scanBatch is the page size used when the whole project list must be read to filter it.
const scanBatch = 100

// listProjects answers Harbor's GET /projects: ?name (substring), ?public, ?page, ?page_size, with
// X-Total-Count and Link. Anonymous callers see public projects only, users also those they are members
// of, system administrators all.
func (a *API) listProjects(w http.ResponseWriter, r *http.Request) error {
	who, err := a.principal(r)
	if err != nil {
		return err
	}
	return listPage(w, r, func(q url.Values, pg paging.Page) ([]projectJSON, int64, error) {
		projects, total, err := a.visibleProjects(r.Context(), who, q, pg)
		if err != nil {
			return nil, 0, err
		}
		out := make([]projectJSON, 0, len(projects))
		for _, p := range projects {
			j, err := a.projectToJSON(r.Context(), p)
			if err != nil {
				return nil, 0, err
			}
			out = append(out, j)
		}
		return out, total, nil
	})
}

// visibleProjects returns the page of the projects who may see that match q (name, public).
func (a *API) visibleProjects(ctx context.Context, who auth.Principal, q url.Values, pg paging.Page) ([]*meta.Project, int64, error) {
	var public *bool
	if v := q.Get("public"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, 0, errcode.ErrBadRequest.WithMessage("public must be true or false, got %q", v)
		}
		public = &b
	}
	var (
		projects []*meta.Project
		total    int64
		err      error
	)
	switch {
	case who.Admin && public == nil:
		projects, total, err = a.projects.ListProjects(ctx, q.Get("name"), pg.Offset(), pg.Size)
	case who.Admin:
		projects, total, err = a.listMatching(ctx, q.Get("name"), pg, func(p *meta.Project) bool { return p.Public() == *public })
	default:
		// Others see the public projects and those where they may pull (their memberships).
		projects, total, err = a.listMatching(ctx, q.Get("name"), pg, func(p *meta.Project) bool {
			return (public == nil || p.Public() == *public) && a.auth.Authorize(ctx, who, p, auth.Pull) == nil
		})
	}
	if err != nil {
		return nil, 0, storeError(err, "project")
	}
	return projects, total, nil
}

// listMatching pages through the projects keep accepts. ProjectStore cannot filter by metadata or
// membership, so it reads the whole (name-filtered) list in batches and pages in memory.
func (a *API) listMatching(ctx context.Context, name string, pg paging.Page, keep func(*meta.Project) bool) ([]*meta.Project, int64, error) {
	var matched []*meta.Project
	for offset := 0; ; {
		batch, total, err := a.projects.ListProjects(ctx, name, offset, scanBatch)
		if err != nil {
			return nil, 0, err
		}
		for _, p := range batch {
			if keep(p) {
				matched = append(matched, p)
			}
		}
		offset += len(batch)
		if len(batch) < scanBatch || int64(offset) >= total {
			break
		}
	}
	start := min(pg.Offset(), len(matched))
	end := min(start+pg.Size, len(matched))
	return matched[start:end], int64(len(matched)), nil
}
