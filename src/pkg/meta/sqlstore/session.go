package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
)

var _ meta.SessionStore = (*store)(nil)

type sessionRow struct {
	Key     string `orm:"column(session_key)"`
	User    string `orm:"column(user_name)"`
	UserID  int64  `orm:"column(user_id)"`
	Admin   bool   `orm:"column(admin)"`
	CSRF    string `orm:"column(csrf)"`
	Expires int64  `orm:"column(expires)"`
}

// PutSession inserts s after deleting the sessions expired at now (the expires index keeps that cheap).
func (s *store) PutSession(ctx context.Context, ss *meta.Session, now time.Time) error {
	if _, err := exec(ctx, s.w, `DELETE FROM console_session WHERE expires <= ?`, toDBTime(now)); err != nil {
		return fmt.Errorf("meta: remove expired sessions: %w", err)
	}
	_, err := exec(ctx, s.w, `INSERT INTO console_session (session_key, user_name, user_id, admin, csrf, expires) VALUES (?, ?, ?, ?, ?, ?)`,
		ss.Key, ss.User, ss.UserID, ss.Admin, ss.CSRF, toDBTime(ss.Expires))
	switch {
	case isUniqueViolation(err):
		return conflict("meta: session exists")
	case err != nil:
		return fmt.Errorf("meta: put session: %w", err)
	}
	return nil
}

// GetSession reads the session; an expired row is left for the next PutSession to remove.
func (s *store) GetSession(ctx context.Context, key string, now time.Time) (*meta.Session, error) {
	return getRow(ctx, s.r, "session", func(r *sessionRow) (*meta.Session, error) {
		return &meta.Session{Key: r.Key, User: r.User, UserID: r.UserID, Admin: r.Admin, CSRF: r.CSRF, Expires: fromDBTime(r.Expires)}, nil
	}, `SELECT session_key, user_name, user_id, admin, csrf, expires FROM console_session
		WHERE session_key = ? AND expires > ?`, key, toDBTime(now))
}

// DeleteSession removes the session with that key.
func (s *store) DeleteSession(ctx context.Context, key string) error {
	if _, err := exec(ctx, s.w, `DELETE FROM console_session WHERE session_key = ?`, key); err != nil {
		return fmt.Errorf("meta: delete session: %w", err)
	}
	return nil
}
