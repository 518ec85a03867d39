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
	return s.insertRow(ctx, creating("user", u.Username), stamps{&u.ID, &u.CreationTime, &u.UpdateTime}, t,
		`INSERT INTO account (username, email, realname, comment, password_hash, sysadmin, creation_time, update_time)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		u.Username, u.Email, u.Realname, u.Comment, u.PasswordHash, u.Sysadmin, toDBTime(t), toDBTime(t))
}

func (s *store) getUser(ctx context.Context, what, where string, arg any) (*meta.User, error) {
	return getRow(ctx, s.r, what, pure((*userRow).user), `SELECT `+userCols+` FROM account WHERE `+where, arg)
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
	return listNamed(ctx, s, "users", userCols, "account", "username", name, offset, limit, pure((*userRow).user))
}

// UpdateUser stores u's mutable fields and sets u.UpdateTime.
func (s *store) UpdateUser(ctx context.Context, u *meta.User) error {
	t := now()
	return s.updateRow(ctx, updating("user", u.ID), &u.UpdateTime, t,
		`UPDATE account SET email = ?, realname = ?, comment = ?, password_hash = ?, sysadmin = ?, update_time = ?
		 WHERE id = ?`,
		u.Email, u.Realname, u.Comment, u.PasswordHash, u.Sysadmin, toDBTime(t), u.ID)
}

// DeleteUser removes the user; its memberships go with it (ON DELETE CASCADE).
func (s *store) DeleteUser(ctx context.Context, id int64) error {
	return s.deleteByID(ctx, "account", "user", id)
}
