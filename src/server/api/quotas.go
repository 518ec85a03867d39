package api

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/berth-registry/berth/src/pkg/admin"
	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/paging"
)

// Every project has one quota, on storage, whose ID is the project's ID (Harbor gives quotas IDs of
// their own; clients read them from the list filtered by reference_id, which gives the same answer).
// Its hard limit is the project's storage_limit (-1: unlimited) and its usage what package meta counts:
// the bytes of the project's distinct blobs and manifests.

// UsageReader reports a project's storage usage; meta.QuotaStore satisfies it.
type UsageReader interface {
	ProjectUsage(ctx context.Context, projectID int64) (int64, error)
}

// VolumeStat reports the size and the free bytes of the filesystem holding the data dir.
type VolumeStat func(ctx context.Context) (total, free uint64, err error)

const (
	quotaReferenceProject = "project"
	resourceStorage       = "storage"
)

type quotaRef struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	OwnerName string `json:"owner_name"`
}

// quotaJSON is Harbor's Quota model.
type quotaJSON struct {
	ID           int64            `json:"id"`
	Ref          quotaRef         `json:"ref"`
	Hard         map[string]int64 `json:"hard"`
	Used         map[string]int64 `json:"used"`
	CreationTime harborTime       `json:"creation_time"`
	UpdateTime   harborTime       `json:"update_time"`
}

// hardLimit is the storage_limit as Harbor shows it: -1 for unlimited (Berth also stores 0 for it).
func hardLimit(p *meta.Project) int64 {
	if p.StorageLimit <= 0 {
		return -1
	}
	return p.StorageLimit
}

func (a *API) quotaOf(ctx context.Context, p *meta.Project) (quotaJSON, error) {
	used, err := a.usage.ProjectUsage(ctx, p.ID)
	if err != nil {
		return quotaJSON{}, errcode.ErrInternal.Wrap(err, "reading the usage of project %s", p.Name)
	}
	return quotaJSON{
		ID: p.ID, Ref: quotaRef{ID: p.ID, Name: p.Name, OwnerName: auth.AdminUser},
		Hard: map[string]int64{resourceStorage: hardLimit(p)}, Used: map[string]int64{resourceStorage: used},
		CreationTime: harborTime(p.CreationTime), UpdateTime: harborTime(p.UpdateTime),
	}, nil
}

// listQuotas answers GET /quotas: ?reference (only "project" has quotas), ?reference_id (a project
// ID), ?sort (hard.storage or used.storage, "-" for descending), ?page, ?page_size. Admin only.
func (a *API) listQuotas(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	return listPage(w, r, func(q url.Values, pg paging.Page) ([]quotaJSON, int64, error) {
		out, err := a.sortedQuotas(r.Context(), q)
		total := int64(len(out))
		return out[min(pg.Offset(), len(out)):min(pg.Offset()+pg.Size, len(out))], total, err
	})
}

// sortedQuotas returns the quotas listQuotas asks for (q: reference, reference_id, sort), sorted.
func (a *API) sortedQuotas(ctx context.Context, q url.Values) ([]quotaJSON, error) {
	sortKey := q.Get("sort")
	byKey, desc := quotaSortKey(sortKey)
	if sortKey != "" && byKey == nil {
		return nil, errcode.ErrBadRequest.WithMessage("sort %q is invalid: use hard.storage or used.storage, - in front for descending", sortKey)
	}
	projects, err := a.quotaProjects(ctx, q.Get("reference"), q.Get("reference_id"))
	if err != nil {
		return nil, err
	}
	out := make([]quotaJSON, 0, len(projects))
	for _, p := range projects {
		j, err := a.quotaOf(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	if byKey != nil {
		slices.SortStableFunc(out, func(x, y quotaJSON) int {
			if desc {
				x, y = y, x
			}
			return cmp.Compare(byKey(x), byKey(y))
		})
	}
	return out, nil
}

func quotaSortKey(s string) (func(quotaJSON) int64, bool) {
	desc := len(s) > 0 && s[0] == '-'
	if desc {
		s = s[1:]
	}
	switch s {
	case "hard.storage":
		return func(q quotaJSON) int64 { return q.Hard[resourceStorage] }, desc
	case "used.storage":
		return func(q quotaJSON) int64 { return q.Used[resourceStorage] }, desc
	}
	return nil, false
}

// quotaProjects returns the projects whose quotas a list shows, in name order.
func (a *API) quotaProjects(ctx context.Context, reference, referenceID string) ([]*meta.Project, error) {
	if reference != "" && reference != quotaReferenceProject {
		return nil, nil // only projects have quotas
	}
	if referenceID != "" {
		id, err := admin.ParseID("reference_id (a project ID)", referenceID)
		if err != nil {
			return nil, err
		}
		p, err := a.projects.GetProject(ctx, id)
		if err != nil {
			if errors.Is(err, meta.ErrNotFound) {
				return nil, nil
			}
			return nil, storeError(err, "project")
		}
		return []*meta.Project{p}, nil
	}
	var all []*meta.Project
	for offset := 0; ; offset += scanBatch {
		batch, _, err := a.projects.ListProjects(ctx, "", offset, scanBatch)
		if err != nil {
			return nil, storeError(err, "project")
		}
		all = append(all, batch...)
		if len(batch) < scanBatch {
			return all, nil
		}
	}
}

// quotaProject returns the project whose quota the {id} path value names.
func (a *API) quotaProject(r *http.Request) (*meta.Project, error) {
	if err := a.requireAdmin(r); err != nil {
		return nil, err
	}
	id, err := admin.ParseID("quota id", r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	p, err := a.projects.GetProject(r.Context(), id)
	if err != nil {
		return nil, storeError(err, "quota "+r.PathValue("id"))
	}
	return p, nil
}

// getQuota answers GET /quotas/{id} (system administrators).
func (a *API) getQuota(w http.ResponseWriter, r *http.Request) error {
	return getJSON(w, r, a.quotaProject, a.quotaOf)
}

// quotaUpdateReq is Harbor's QuotaUpdateReq.
type quotaUpdateReq struct {
	Hard map[string]*int64 `json:"hard"`
}

// updateQuota answers PUT /quotas/{id} with {"hard":{"storage":N}}: N is -1 (unlimited) or a positive
// number of bytes. A limit below the current usage is accepted, as in Harbor: nothing is removed, new
// pushes are refused and proxy-cache projects evict down to it as they fill.
func (a *API) updateQuota(w http.ResponseWriter, r *http.Request) error {
	p, req, err := authorizedBody[quotaUpdateReq](w, r, a.quotaProject)
	if err != nil {
		return err
	}
	if p.StorageLimit, err = admin.QuotaStorage(req.Hard); err != nil {
		return err
	}
	return a.saveProject(w, r, p)
}

// summaryJSON is Harbor's ProjectSummary. The admin is every project's only member.
type summaryJSON struct {
	RepoCount         int64         `json:"repo_count"`
	ProjectAdminCount int64         `json:"project_admin_count"`
	Quota             *summaryQuota `json:"quota,omitempty"`
	Registry          *registryJSON `json:"registry,omitempty"`
}

type summaryQuota struct {
	Hard map[string]int64 `json:"hard"`
	Used map[string]int64 `json:"used"`
}

// projectSummary answers GET /projects/{name_or_id}/summary for callers who may read the project.
func (a *API) projectSummary(w http.ResponseWriter, r *http.Request) error {
	return getJSON(w, r, a.readablePathProject, a.summaryOf)
}

// summaryOf returns p's summary: its repository count, its quota and, for a proxy-cache project, its
// registry.
func (a *API) summaryOf(ctx context.Context, p *meta.Project) (summaryJSON, error) {
	n, err := a.repoCount(ctx, p)
	if err != nil {
		return summaryJSON{}, err
	}
	q, err := a.quotaOf(ctx, p)
	if err != nil {
		return summaryJSON{}, err
	}
	out := summaryJSON{RepoCount: n, ProjectAdminCount: 1, Quota: &summaryQuota{Hard: q.Hard, Used: q.Used}}
	if p.IsProxy() {
		reg, err := a.registries.GetRegistry(ctx, p.RegistryID)
		if err != nil {
			return summaryJSON{}, storeError(err, "registry")
		}
		j := a.registryToJSON(reg)
		out.Registry = &j
	}
	return out, nil
}

type volumeJSON struct {
	Total uint64 `json:"total"`
	Free  uint64 `json:"free"`
}

// getVolumes answers GET /systeminfo/volumes: the filesystem holding the data dir. Admin only.
func (a *API) getVolumes(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	total, free, err := a.volumes(r.Context())
	if err != nil {
		return errcode.ErrInternal.Wrap(err, "reading the storage volume")
	}
	return writeOK(w, map[string][]volumeJSON{"storage": {{Total: total, Free: free}}})
}
