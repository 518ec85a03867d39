package meta

import (
	"context"
	"time"
)

// Session is a web console login, stored so that it outlives a restart and is seen by every node.
type Session struct {
	// Key identifies the session: a hash of the session ID the browser holds. The ID itself is never
	// stored, so reading the table gives no cookie that logs in.
	Key     string
	User    string
	UserID  int64 // the local user's ID (meta.User.ID)
	Admin   bool
	CSRF    string // the token every state-changing form carries
	Expires time.Time
}

// SessionStore keeps console sessions until they expire.
type SessionStore interface {
	// PutSession stores s (ErrConflict when its key exists) and removes every session that expired
	// before now, so the table holds live sessions only.
	PutSession(ctx context.Context, s *Session, now time.Time) error
	// GetSession returns the session with that key, or ErrNotFound when there is none or it expired at now.
	GetSession(ctx context.Context, key string, now time.Time) (*Session, error)
	// DeleteSession removes the session with that key; removing an absent one is not an error.
	DeleteSession(ctx context.Context, key string) error
}
