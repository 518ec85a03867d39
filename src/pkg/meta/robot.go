package meta

import (
	"context"
	"time"
)

// Robot levels (Harbor's).
const (
	RobotLevelSystem  = "system"
	RobotLevelProject = "project"
)

// Robot is a robot account: a credential for machines, limited to its permissions. Name is stored
// without the configurable prefix ("robot$"): "<name>" at system level, "<project>+<name>" at project
// level.
type Robot struct {
	ID          int64
	Name        string
	Description string
	Level       string
	ProjectID   int64 // the project of a project-level robot; 0 at system level
	Permissions []RobotPermission
	// SecretHash is the secret's salted hash (see package robot); the secret itself is never stored.
	SecretHash   string
	Duration     int64     // days the robot lives from creation or its last refresh; -1 = forever
	ExpiresAt    time.Time // zero = never
	Disabled     bool
	CreationTime time.Time
	UpdateTime   time.Time
}

// RobotPermission grants Access on the projects Namespace names (a project name, or "*" for all) of
// Kind "project".
type RobotPermission struct {
	Kind      string        `json:"kind"`
	Namespace string        `json:"namespace"`
	Access    []RobotAccess `json:"access"`
}

// RobotAccess is one action on one resource type.
type RobotAccess struct {
	Resource string `json:"resource"`
	Action   string `json:"action"`
	Effect   string `json:"effect,omitempty"`
}

// RobotFilter selects robots in ListRobots; zero fields match all.
type RobotFilter struct {
	Level     string
	ProjectID int64
	Name      string // case-insensitive substring
}

// RobotStore manages robot accounts.
type RobotStore interface {
	// CreateRobot inserts r, sets r.ID and the times, and returns the ID. ErrConflict when the name exists.
	CreateRobot(ctx context.Context, r *Robot) (int64, error)
	// GetRobot returns the robot with that ID.
	GetRobot(ctx context.Context, id int64) (*Robot, error)
	// GetRobotByName returns the robot with that (unprefixed) name.
	GetRobotByName(ctx context.Context, name string) (*Robot, error)
	// ListRobots returns the robots f selects ordered by ID, and their total count. limit <= 0: all.
	ListRobots(ctx context.Context, f RobotFilter, offset, limit int) ([]*Robot, int64, error)
	// UpdateRobot stores r's description, permissions, secret hash, duration, expiry and disabled flag,
	// and sets r.UpdateTime.
	UpdateRobot(ctx context.Context, r *Robot) error
	// DeleteRobot removes the robot with that ID.
	DeleteRobot(ctx context.Context, id int64) error
}
