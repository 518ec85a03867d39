package sqlstore

import (
	"context"
	"fmt"

	"github.com/berth-registry/berth/src/pkg/meta"
)

var _ meta.MemberStore = (*store)(nil)

type memberRow struct {
	ID           int64  `orm:"column(id)"`
	ProjectID    int64  `orm:"column(project_id)"`
	UserID       int64  `orm:"column(user_id)"`
	Username     string `orm:"column(username)"`
	Role         int    `orm:"column(role)"`
	CreationTime int64  `orm:"column(creation_time)"`
	UpdateTime   int64  `orm:"column(update_time)"`
}

const (
	memberCols   = `m.id, m.project_id, m.user_id, a.username, m.role, m.creation_time, m.update_time`
	memberFrom   = `project_member m JOIN account a ON a.id = m.user_id`
	memberSelect = `SELECT ` + memberCols + ` FROM ` + memberFrom
)

func (r *memberRow) member() *meta.Member {
	return &meta.Member{ID: r.ID, ProjectID: r.ProjectID, UserID: r.UserID, Username: r.Username, Role: meta.Role(r.Role),
		CreationTime: fromDBTime(r.CreationTime), UpdateTime: fromDBTime(r.UpdateTime)}
}

// AddMember inserts m. A project or user that does not exist gives ErrNotFound.
func (s *store) AddMember(ctx context.Context, m *meta.Member) (int64, error) {
	t := now()
	return s.insertRow(ctx, write{verb: "add", what: "member", dup: fmt.Sprintf("user %d is a member of project %d", m.UserID, m.ProjectID),
		parent: fmt.Sprintf("project %d or user %d", m.ProjectID, m.UserID)}, stamps{&m.ID, &m.CreationTime, &m.UpdateTime}, t,
		`INSERT INTO project_member (project_id, user_id, role, creation_time, update_time)
		 VALUES (?, ?, ?, ?, ?) RETURNING id`, m.ProjectID, m.UserID, int(m.Role), toDBTime(t), toDBTime(t))
}

// GetMember returns one member of a project.
func (s *store) GetMember(ctx context.Context, projectID, id int64) (*meta.Member, error) {
	return getRow(ctx, s.r, fmt.Sprintf("member %d of project %d", id, projectID), pure((*memberRow).member),
		memberSelect+` WHERE m.project_id = ? AND m.id = ?`, projectID, id)
}

// ListMembers lists a project's members by user name.
func (s *store) ListMembers(ctx context.Context, projectID int64, name string, offset, limit int) ([]*meta.Member, int64, error) {
	where, args := ` WHERE m.project_id = ?`, []any{projectID}
	if name != "" {
		where, args = where+` AND `+containsCond("a.username"), append(args, likeContains(name))
	}
	return listPage(ctx, s, listQuery{what: "members", cols: memberCols, from: memberFrom, where: where, args: args,
		order: ` ORDER BY a.username`}, offset, limit, pure((*memberRow).member))
}

// UpdateMemberRole sets a member's role.
func (s *store) UpdateMemberRole(ctx context.Context, projectID, id int64, role meta.Role) error {
	n, err := exec(ctx, s.w, `UPDATE project_member SET role = ?, update_time = ? WHERE project_id = ? AND id = ?`,
		int(role), toDBTime(now()), projectID, id)
	return changedOne(n, err, "update", "member %d of project %d", id, projectID)
}

// DeleteMember removes a member.
func (s *store) DeleteMember(ctx context.Context, projectID, id int64) error {
	n, err := exec(ctx, s.w, `DELETE FROM project_member WHERE project_id = ? AND id = ?`, projectID, id)
	return changedOne(n, err, "delete", "member %d of project %d", id, projectID)
}

// MemberRole returns a user's role in a project.
func (s *store) MemberRole(ctx context.Context, projectID, userID int64) (meta.Role, error) {
	var roles []int
	if _, err := queryRows(ctx, s.r, &roles, `SELECT role FROM project_member WHERE project_id = ? AND user_id = ?`, projectID, userID); err != nil {
		return 0, fmt.Errorf("meta: member role: %w", err)
	}
	if len(roles) == 0 {
		return 0, notFound("meta: user %d in project %d", userID, projectID)
	}
	return meta.Role(roles[0]), nil
}
