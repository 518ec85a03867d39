package sqlstore

import (
	"context"
	"fmt"

	"github.com/berth-registry/berth/src/pkg/meta"
)

var _ meta.UserStore = (*store)(nil)

type userRow struct {
	ID           int64  `orm:"column(id)"`
	Username     string `orm:"column(username)"`
	Email        string `orm:"column(email)"`
	Realname     string `orm:"column(realname)"`
	Comment      string `orm:"column(comment)"`
	PasswordHash string `orm:"column(password_hash)"`
	Sysadmin     bool   `orm:"column(sysadmin)"`
	CreationTime int64  `orm:"column(creation_time)"`
	UpdateTime   int64  `orm:"column(update_time)"`
}

const userCols = `id, username, email, realname, comment, password_hash, sysadmin, creation_time, update_time`

func (r *userRow) user() *meta.User {
	return &meta.User{
		ID: r.ID, Username: r.Username, Email: r.Email, Realname: r.Realname, Comment: r.Comment,
		PasswordHash: r.PasswordHash, Sysadmin: r.Sysadmin,
		CreationTime: fromDBTime(r.CreationTime), UpdateTime: fromDBTime(r.UpdateTime),
	}
}

// CreateUser inserts u.
func (s *store) CreateUser(ctx context.Context, u *meta.User) (int64, error) {
	t := now()
	var ids []int64
	_, err := queryRows(ctx, s.w, &ids,
		`INSERT INTO account (username, email, realname, comment, password_hash, sysadmin, creation_time, update_time)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		u.Username, u.Email, u.Realname, u.Comment, u.PasswordHash, u.Sysadmin, toDBTime(t), toDBTime(t))
	switch {
	case isUniqueViolation(err):
		return 0, conflict("meta: user %q exists", u.Username)
	case err != nil:
		return 0, fmt.Errorf("meta: create user %q: %w", u.Username, err)
	case len(ids) != 1:
		return 0, fmt.Errorf("meta: create user %q: insert returned %d rows", u.Username, len(ids))
	}
	u.ID, u.CreationTime, u.UpdateTime = ids[0], t, t
	return u.ID, nil
}

func (s *store) getUser(ctx context.Context, what, where string, arg any) (*meta.User, error) {
	var rows []userRow
	if _, err := queryRows(ctx, s.r, &rows, `SELECT `+userCols+` FROM account WHERE `+where, arg); err != nil {
		return nil, fmt.Errorf("meta: get %s: %w", what, err)
	}
	if len(rows) == 0 {
		return nil, notFound("meta: %s", what)
	}
	return rows[0].user(), nil
}

// GetUser returns the user with that ID.
func (s *store) GetUser(ctx context.Context, id int64) (*meta.User, error) {
	return s.getUser(ctx, fmt.Sprintf("user %d", id), `id = ?`, id)
}

// GetUserByName returns the user with that name.
func (s *store) GetUserByName(ctx context.Context, name string) (*meta.User, error) {
	return s.getUser(ctx, fmt.Sprintf("user %q", name), `username = ?`, name)
}

// ListUsers matches name as a case-insensitive substring. limit <= 0 returns all.
func (s *store) ListUsers(ctx context.Context, name string, offset, limit int) ([]*meta.User, int64, error) {
	where, args := "", []any{}
	if name != "" {
		where, args = ` WHERE LOWER(username) LIKE LOWER(?) ESCAPE '\'`, append(args, likeContains(name))
	}
	var total []int64
	if _, err := queryRows(ctx, s.r, &total, `SELECT COUNT(*) FROM account`+where, args...); err != nil {
		return nil, 0, fmt.Errorf("meta: count users: %w", err)
	}
	page, args := s.d.limitOffset(limit, offset, args)
	var rows []userRow
	if _, err := queryRows(ctx, s.r, &rows, `SELECT `+userCols+` FROM account`+where+` ORDER BY username`+page, args...); err != nil {
		return nil, 0, fmt.Errorf("meta: list users: %w", err)
	}
	out := make([]*meta.User, 0, len(rows))
	for i := range rows {
		out = append(out, rows[i].user())
	}
	return out, total[0], nil
}

// UpdateUser stores u's mutable fields and sets u.UpdateTime.
func (s *store) UpdateUser(ctx context.Context, u *meta.User) error {
	t := now()
	n, err := exec(ctx, s.w,
		`UPDATE account SET email = ?, realname = ?, comment = ?, password_hash = ?, sysadmin = ?, update_time = ?
		 WHERE id = ?`,
		u.Email, u.Realname, u.Comment, u.PasswordHash, u.Sysadmin, toDBTime(t), u.ID)
	switch {
	case err != nil:
		return fmt.Errorf("meta: update user %d: %w", u.ID, err)
	case n == 0:
		return notFound("meta: user %d", u.ID)
	}
	u.UpdateTime = t
	return nil
}

// DeleteUser removes the user; its memberships go with it (ON DELETE CASCADE).
func (s *store) DeleteUser(ctx context.Context, id int64) error {
	n, err := exec(ctx, s.w, `DELETE FROM account WHERE id = ?`, id)
	switch {
	case err != nil:
		return fmt.Errorf("meta: delete user %d: %w", id, err)
	case n == 0:
		return notFound("meta: user %d", id)
	}
	return nil
}
