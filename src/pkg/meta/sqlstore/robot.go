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
	return &meta.Robot{
		ID: r.ID, Name: r.Name, Description: r.Description, Level: r.Level, ProjectID: r.ProjectID,
		Permissions: perms, SecretHash: r.SecretHash, Duration: r.Duration, ExpiresAt: fromDBTimeOrZero(r.ExpiresAt),
		Disabled: r.Disabled, CreationTime: fromDBTime(r.CreationTime), UpdateTime: fromDBTime(r.UpdateTime),
	}, nil
}

// robotExpiry is the expires_at of a robot: 0 (the column is NOT NULL) for one that never expires
// (zero t), which fromDBTimeOrZero reads back as the zero time.
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
	w := creating("robot", r.Name).under("project", r.ProjectID)
	perms, err := encodePermissions(r.Permissions)
	if err != nil {
		return 0, w.fail(err)
	}
	t := now()
	return s.insertRow(ctx, w, stamps{&r.ID, &r.CreationTime, &r.UpdateTime}, t,
		`INSERT INTO robot (name, description, level, project_id, permissions, secret_hash, duration, expires_at,
			disabled, creation_time, update_time)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		r.Name, r.Description, r.Level, nullIfZero(r.ProjectID), perms, r.SecretHash, r.Duration,
		robotExpiry(r.ExpiresAt), r.Disabled, toDBTime(t), toDBTime(t))
}

func (s *store) getRobot(ctx context.Context, what string, where string, arg any) (*meta.Robot, error) {
	return getRow(ctx, s.r, "robot "+what, (*robotRow).robot, `SELECT `+robotCols+` FROM robot WHERE `+where, arg)
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
		where, args = where+` AND `+containsCond("name"), append(args, likeContains(f.Name))
	}
	return listPage(ctx, s, listQuery{what: "robots", cols: robotCols, from: "robot", where: where, args: args,
		order: ` ORDER BY id`}, offset, limit, (*robotRow).robot)
}

// UpdateRobot stores r's mutable fields.
func (s *store) UpdateRobot(ctx context.Context, r *meta.Robot) error {
	w := updating("robot", r.ID)
	perms, err := encodePermissions(r.Permissions)
	if err != nil {
		return w.fail(err)
	}
	t := now()
	return s.updateRow(ctx, w, &r.UpdateTime, t,
		`UPDATE robot SET description = ?, permissions = ?, secret_hash = ?, duration = ?, expires_at = ?,
			disabled = ?, update_time = ? WHERE id = ?`,
		r.Description, perms, r.SecretHash, r.Duration, robotExpiry(r.ExpiresAt), r.Disabled, toDBTime(t), r.ID)
}

// DeleteRobot removes the robot with that ID.
func (s *store) DeleteRobot(ctx context.Context, id int64) error {
	return s.deleteByID(ctx, "robot", "robot", id)
}
