package meta

import (
	"context"
	"time"
)

// User is a local account. PasswordHash is the encoded hash (package auth makes and checks it); it
// never leaves the server.
type User struct {
	ID           int64
	Username     string
	Email        string
	Realname     string
	Comment      string
	PasswordHash string
	Sysadmin     bool
	CreationTime time.Time
	UpdateTime   time.Time
}

// Role is a project role, with Harbor's IDs.
type Role int

// Harbor's project roles.
const (
	RoleProjectAdmin Role = 1
	RoleDeveloper    Role = 2
	RoleGuest        Role = 3
	RoleMaintainer   Role = 4
	RoleLimitedGuest Role = 5
)

// Valid reports whether r is one of Harbor's roles.
func (r Role) Valid() bool { return r >= RoleProjectAdmin && r <= RoleLimitedGuest }

// Name is Harbor's role name (the role_name of a member).
func (r Role) Name() string {
	switch r {
	case RoleProjectAdmin:
		return "projectAdmin"
	case RoleDeveloper:
		return "developer"
	case RoleGuest:
		return "guest"
	case RoleMaintainer:
		return "maintainer"
	case RoleLimitedGuest:
		return "limitedGuest"
	}
	return ""
}

// Member is a user's role in a project. Username is filled by reads.
type Member struct {
	ID           int64
	ProjectID    int64
	UserID       int64
	Username     string
	Role         Role
	CreationTime time.Time
	UpdateTime   time.Time
}

// AuditEntry is one audit log record. ProjectID is 0 for system-level resources (users, registries).
type AuditEntry struct {
	ID           int64
	ProjectID    int64
	Resource     string
	ResourceType string
	Operation    string
	Username     string
	OpTime       time.Time
}

// AuditQuery filters audit entries; empty fields match everything. Resource and Username match as
// case-insensitive substrings (Harbor's fuzzy match), Operation exactly; From/To bound OpTime inclusively
// when not zero.
type AuditQuery struct {
	Operation    string
	ResourceType string
	Resource     string
	Username     string
	From, To     time.Time
}

// UserStore manages local accounts.
type UserStore interface {
	// CreateUser inserts u, sets u.ID and the times. ErrConflict when the user name exists.
	CreateUser(ctx context.Context, u *User) (int64, error)
	// GetUser returns the user with that ID.
	GetUser(ctx context.Context, id int64) (*User, error)
	// GetUserByName returns the user with that name (exact, case-sensitive).
	GetUserByName(ctx context.Context, name string) (*User, error)
	// ListUsers returns users ordered by name, filtered by a case-insensitive name substring when
	// name != "", and the total count. limit <= 0 returns all.
	ListUsers(ctx context.Context, name string, offset, limit int) ([]*User, int64, error)
	// UpdateUser stores u's email, real name, comment, password hash and sysadmin flag.
	UpdateUser(ctx context.Context, u *User) error
	// DeleteUser removes the user and its memberships.
	DeleteUser(ctx context.Context, id int64) error
}

// MemberStore manages project members.
type MemberStore interface {
	// AddMember inserts m, sets m.ID and the times. ErrConflict when the user is a member already,
	// ErrNotFound when the project or the user does not exist.
	AddMember(ctx context.Context, m *Member) (int64, error)
	// GetMember returns the member of the project with that member ID.
	GetMember(ctx context.Context, projectID, id int64) (*Member, error)
	// ListMembers returns the members of a project ordered by user name, filtered by a case-insensitive
	// user name substring when name != "", and the total count. limit <= 0 returns all.
	ListMembers(ctx context.Context, projectID int64, name string, offset, limit int) ([]*Member, int64, error)
	// UpdateMemberRole sets the role of a member.
	UpdateMemberRole(ctx context.Context, projectID, id int64, role Role) error
	// DeleteMember removes a member.
	DeleteMember(ctx context.Context, projectID, id int64) error
	// MemberRole returns the user's role in the project; ErrNotFound when the user is no member.
	MemberRole(ctx context.Context, projectID, userID int64) (Role, error)
}

// AuditStore keeps the audit log.
type AuditStore interface {
	// AddAuditEntries appends entries in one transaction.
	AddAuditEntries(ctx context.Context, entries []AuditEntry) error
	// ListAuditEntries returns matching entries, newest first, and the total count. limit <= 0 returns all.
	ListAuditEntries(ctx context.Context, q AuditQuery, offset, limit int) ([]*AuditEntry, int64, error)
	// PurgeAuditEntries removes entries older than before and returns how many.
	PurgeAuditEntries(ctx context.Context, before time.Time) (int64, error)
}
