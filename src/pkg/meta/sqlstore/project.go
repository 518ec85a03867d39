package sqlstore

import (
	"context"
	"fmt"

	"github.com/berth-registry/berth/src/pkg/meta"
)

var _ meta.ProjectStore = (*store)(nil)

type projectRow struct {
	ID           int64  `orm:"column(id)"`
	Name         string `orm:"column(name)"`
	RegistryID   int64  `orm:"column(registry_id)"` // NULL scans as 0
	Metadata     string `orm:"column(metadata)"`
	StorageLimit int64  `orm:"column(storage_limit)"`
	CreationTime int64  `orm:"column(creation_time)"`
	UpdateTime   int64  `orm:"column(update_time)"`
}

const projectCols = `id, name, registry_id, metadata, storage_limit, creation_time, update_time`

func (r *projectRow) project() (*meta.Project, error) {
	md, err := decodeMap(r.Metadata)
	if err != nil {
		return nil, fmt.Errorf("project %d metadata: %w", r.ID, err)
	}
	return &meta.Project{
		ID:           r.ID,
		Name:         r.Name,
		RegistryID:   r.RegistryID,
		Metadata:     md,
		StorageLimit: r.StorageLimit,
		CreationTime: fromDBTime(r.CreationTime),
		UpdateTime:   fromDBTime(r.UpdateTime),
	}, nil
}

// CreateProject inserts p. A RegistryID that names no registry gives ErrNotFound.
func (s *store) CreateProject(ctx context.Context, p *meta.Project) (int64, error) {
	w := creating("project", p.Name).under("registry", p.RegistryID)
	md, err := encodeMap(p.Metadata)
	if err != nil {
		return 0, w.fail(err)
	}
	t := now()
	return s.insertRow(ctx, w, stamps{&p.ID, &p.CreationTime, &p.UpdateTime}, t,
		`INSERT INTO project (name, registry_id, metadata, storage_limit, creation_time, update_time)
		 VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		p.Name, nullIfZero(p.RegistryID), md, p.StorageLimit, toDBTime(t), toDBTime(t))
}

func (s *store) GetProject(ctx context.Context, id int64) (*meta.Project, error) {
	return getProjectStmt(ctx, s.stmts.project, fmt.Sprintf("project %d", id), id)
}

func (s *store) GetProjectByName(ctx context.Context, name string) (*meta.Project, error) {
	return getProjectStmt(ctx, s.stmts.projectByName, fmt.Sprintf("project %q", name), name)
}

// ListProjects matches name as a case-insensitive substring. limit <= 0 returns all.
func (s *store) ListProjects(ctx context.Context, name string, offset, limit int) ([]*meta.Project, int64, error) {
	return listNamed(ctx, s, "projects", projectCols, "project", "name", name, offset, limit, (*projectRow).project)
}

// UpdateProject sets p.UpdateTime. A RegistryID that names no registry gives ErrNotFound.
func (s *store) UpdateProject(ctx context.Context, p *meta.Project) error {
	w := updating("project", p.ID).under("registry", p.RegistryID)
	md, err := encodeMap(p.Metadata)
	if err != nil {
		return w.fail(err)
	}
	t := now()
	return s.updateRow(ctx, w, &p.UpdateTime, t,
		`UPDATE project SET metadata = ?, registry_id = ?, storage_limit = ?, update_time = ? WHERE id = ?`,
		md, nullIfZero(p.RegistryID), p.StorageLimit, toDBTime(t), p.ID)
}

// DeleteProject deletes the project in one statement; the foreign key from repository backs the check
// up when a push races the delete.
func (s *store) DeleteProject(ctx context.Context, id int64) error {
	return s.deleteUnused(ctx, fmt.Sprintf("project %d", id), "holds repositories",
		func() error { _, err := s.GetProject(ctx, id); return err },
		`DELETE FROM project WHERE id = ? AND NOT EXISTS (SELECT 1 FROM repository WHERE project_id = ?)`, id, id)
}
