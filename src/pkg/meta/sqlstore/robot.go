package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
)

var _ meta.RobotStore = (*store)(nil)

type robotRow struct {
	ID           int64  `orm:"column(id)"`
	Name         string `orm:"column(name)"`
	Description  string `orm:"column(description)"`
	Level        string `orm:"column(level)"`
	ProjectID    int64  `orm:"column(project_id)"` // NULL scans as 0
	Permissions  string `orm:"column(permissions)"`
	SecretHash   string `orm:"column(secret_hash)"`
	Duration     int64  `orm:"column(duration)"`
	ExpiresAt    int64  `orm:"column(expires_at)"`
	Disabled     bool   `orm:"column(disabled)"`
	CreationTime int64  `orm:"column(creation_time)"`
	UpdateTime   int64  `orm:"column(update_time)"`
}

const robotCols = `id, name, description, level, project_id, permissions, secret_hash, duration, expires_at,
	disabled, creation_time, update_time`

func (r *robotRow) robot() (*meta.Robot, error) {
	var perms []meta.RobotPermission
	if err := json.Unmarshal([]byte(r.Permissions), &perms); err != nil {
		return nil, fmt.Errorf("robot %d permissions: %w", r.ID, err)
	}
	out := &meta.Robot{
		ID: r.ID, Name: r.Name, Description: r.Description, Level: r.Level, ProjectID: r.ProjectID,
		Permissions: perms, SecretHash: r.SecretHash, Duration: r.Duration, Disabled: r.Disabled,
		CreationTime: fromDBTime(r.CreationTime), UpdateTime: fromDBTime(r.UpdateTime),
	}
	if r.ExpiresAt != 0 {
		out.ExpiresAt = fromDBTime(r.ExpiresAt)
	}
	return out, nil
}

func robotExpiry(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return toDBTime(t)
}

func encodePermissions(p []meta.RobotPermission) (string, error) {
	if p == nil {
		p = []meta.RobotPermission{}
	}
	b, err := json.Marshal(p)
	return string(b), err
}

// CreateRobot inserts r. A ProjectID that names no project gives ErrNotFound.
func (s *store) CreateRobot(ctx context.Context, r *meta.Robot) (int64, error) {
	perms, err := encodePermissions(r.Permissions)
	if err != nil {
		return 0, fmt.Errorf("meta: create robot %q: %w", r.Name, err)
	}
	t := now()
	var ids []int64
	_, err = queryRows(ctx, s.w, &ids,
		`INSERT INTO robot (name, description, level, project_id, permissions, secret_hash, duration, expires_at,
			disabled, creation_time, update_time)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		r.Name, r.Description, r.Level, nullIfZero(r.ProjectID), perms, r.SecretHash, r.Duration,
		robotExpiry(r.ExpiresAt), r.Disabled, toDBTime(t), toDBTime(t))
	switch {
	case isUniqueViolation(err):
		return 0, conflict("meta: robot %q exists", r.Name)
	case isForeignKeyViolation(err):
		return 0, notFound("meta: create robot %q: project %d", r.Name, r.ProjectID)
	case err != nil:
		return 0, fmt.Errorf("meta: create robot %q: %w", r.Name, err)
	case len(ids) != 1:
		return 0, fmt.Errorf("meta: create robot %q: insert returned %d rows", r.Name, len(ids))
	}
	r.ID, r.CreationTime, r.UpdateTime = ids[0], t, t
	return r.ID, nil
}

func (s *store) getRobot(ctx context.Context, what string, where string, arg any) (*meta.Robot, error) {
	var rows []robotRow
	if _, err := queryRows(ctx, s.r, &rows, `SELECT `+robotCols+` FROM robot WHERE `+where, arg); err != nil {
		return nil, fmt.Errorf("meta: get robot %s: %w", what, err)
	}
	if len(rows) == 0 {
		return nil, notFound("meta: robot %s", what)
	}
	return rows[0].robot()
}

// GetRobot returns the robot with that ID.
func (s *store) GetRobot(ctx context.Context, id int64) (*meta.Robot, error) {
	return s.getRobot(ctx, fmt.Sprint(id), `id = ?`, id)
}

// GetRobotByName returns the robot with that unprefixed name.
func (s *store) GetRobotByName(ctx context.Context, name string) (*meta.Robot, error) {
	return s.getRobot(ctx, fmt.Sprintf("%q", name), `name = ?`, name)
}

// ListRobots returns the robots f selects ordered by ID, and their total count.
func (s *store) ListRobots(ctx context.Context, f meta.RobotFilter, offset, limit int) ([]*meta.Robot, int64, error) {
	where, args := ` WHERE 1 = 1`, []any{}
	if f.Level != "" {
		where, args = where+` AND level = ?`, append(args, f.Level)
	}
	if f.ProjectID != 0 {
		where, args = where+` AND project_id = ?`, append(args, f.ProjectID)
	}
	if f.Name != "" {
		where, args = where+` AND LOWER(name) LIKE LOWER(?) ESCAPE '\'`, append(args, likeContains(f.Name))
	}
	var total []int64
	if _, err := queryRows(ctx, s.r, &total, `SELECT COUNT(*) FROM robot`+where, args...); err != nil {
		return nil, 0, fmt.Errorf("meta: count robots: %w", err)
	}
	page, args := s.d.limitOffset(limit, offset, args)
	var rows []robotRow
	if _, err := queryRows(ctx, s.r, &rows, `SELECT `+robotCols+` FROM robot`+where+` ORDER BY id`+page, args...); err != nil {
		return nil, 0, fmt.Errorf("meta: list robots: %w", err)
	}
	out := make([]*meta.Robot, 0, len(rows))
	for i := range rows {
		r, err := rows[i].robot()
		if err != nil {
			return nil, 0, fmt.Errorf("meta: list robots: %w", err)
		}
		out = append(out, r)
	}
	return out, total[0], nil
}

// UpdateRobot stores r's mutable fields.
func (s *store) UpdateRobot(ctx context.Context, r *meta.Robot) error {
	perms, err := encodePermissions(r.Permissions)
	if err != nil {
		return fmt.Errorf("meta: update robot %d: %w", r.ID, err)
	}
	t := now()
	n, err := exec(ctx, s.w,
		`UPDATE robot SET description = ?, permissions = ?, secret_hash = ?, duration = ?, expires_at = ?,
			disabled = ?, update_time = ? WHERE id = ?`,
		r.Description, perms, r.SecretHash, r.Duration, robotExpiry(r.ExpiresAt), r.Disabled, toDBTime(t), r.ID)
	switch {
	case err != nil:
		return fmt.Errorf("meta: update robot %d: %w", r.ID, err)
	case n == 0:
		return notFound("meta: robot %d", r.ID)
	}
	r.UpdateTime = t
	return nil
}

// DeleteRobot removes the robot with that ID.
func (s *store) DeleteRobot(ctx context.Context, id int64) error {
	n, err := exec(ctx, s.w, `DELETE FROM robot WHERE id = ?`, id)
	switch {
	case err != nil:
		return fmt.Errorf("meta: delete robot %d: %w", id, err)
	case n == 0:
		return notFound("meta: robot %d", id)
	}
	return nil
}
