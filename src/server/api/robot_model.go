package api

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/robot"
)

// defaultRobotDays is a robot's lifetime when it is created without a duration (Harbor's default
// robot_token_duration, 30 days).
const defaultRobotDays = 30

// robotNameRE is Harbor's robot name rule.
var robotNameRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// robotJSON is Harbor's Robot model.
type robotJSON struct {
	ID           int64                  `json:"id"`
	Name         string                 `json:"name"`
	Description  string                 `json:"description"`
	Secret       string                 `json:"secret,omitempty"`
	Level        string                 `json:"level"`
	Duration     int64                  `json:"duration"`
	Editable     bool                   `json:"editable"`
	Disable      bool                   `json:"disable"`
	ExpiresAt    int64                  `json:"expires_at"`
	Permissions  []meta.RobotPermission `json:"permissions"`
	CreationTime harborTime             `json:"creation_time"`
	UpdateTime   harborTime             `json:"update_time"`
}

// robotReq is Harbor's RobotCreate, and the fields of Robot that PUT reads.
type robotReq struct {
	Name        string                 `json:"name"`
	Description string                 `json:"description"`
	Secret      string                 `json:"secret"`
	Level       string                 `json:"level"`
	Duration    *int64                 `json:"duration"`
	Disable     bool                   `json:"disable"`
	Permissions []meta.RobotPermission `json:"permissions"`
}

// robotCreated is Harbor's RobotCreated.
type robotCreated struct {
	ID           int64      `json:"id"`
	Name         string     `json:"name"`
	Secret       string     `json:"secret"`
	CreationTime harborTime `json:"creation_time"`
	ExpiresAt    int64      `json:"expires_at"`
}

// robotSec is Harbor's RobotSec.
type robotSec struct {
	Secret string `json:"secret"`
}

// permissionsJSON is Harbor's Permissions: what robots of each level may be granted.
type permissionsJSON struct {
	System  []meta.RobotAccess `json:"system"`
	Project []meta.RobotAccess `json:"project"`
}

func (a *API) robotToJSON(r *meta.Robot) robotJSON {
	perms := r.Permissions
	if perms == nil {
		perms = []meta.RobotPermission{}
	}
	return robotJSON{
		ID: r.ID, Name: a.robotPrefix + r.Name, Description: r.Description, Level: r.Level,
		Duration: r.Duration, Editable: true, Disable: r.Disabled, ExpiresAt: expiresAt(r),
		Permissions: perms, CreationTime: harborTime(r.CreationTime), UpdateTime: harborTime(r.UpdateTime),
	}
}

// expiresAt is Harbor's expires_at: Unix seconds, -1 for never.
func expiresAt(r *meta.Robot) int64 {
	if r.ExpiresAt.IsZero() {
		return -1
	}
	return r.ExpiresAt.Unix()
}

// setDuration sets r's duration (days, -1 = forever; nil or 0 = defaultRobotDays) and the expiry it
// gives counted from from.
func setDuration(r *meta.Robot, d *int64, from time.Time) error {
	days := int64(defaultRobotDays)
	if d != nil && *d != 0 {
		days = *d
	}
	switch {
	case days == -1:
		r.Duration, r.ExpiresAt = -1, time.Time{}
	case days < 1 || days > 365*100:
		return errcode.ErrBadRequest.WithMessage("duration must be -1 (never expires) or 1 to 36500 days, got %d", days)
	default:
		r.Duration, r.ExpiresAt = days, from.Add(time.Duration(days)*24*time.Hour).UTC()
	}
	return nil
}

// checkPermissions validates a robot's permissions for its level. A project-level robot has exactly
// one permission, on its own project; a system-level one names existing projects or "*".
func checkPermissions(level, project string, perms []meta.RobotPermission) error {
	if len(perms) == 0 {
		return errcode.ErrBadRequest.WithMessage("a robot needs at least one permission")
	}
	if level == meta.RobotLevelProject && (len(perms) != 1 || perms[0].Namespace != project) {
		return errcode.ErrBadRequest.WithMessage("a project-level robot has one permission, on its project %q", project)
	}
	for _, p := range perms {
		if p.Kind != robot.KindProject {
			return errcode.ErrBadRequest.WithMessage("permission kind %q is not supported (only %q)", p.Kind, robot.KindProject)
		}
		if p.Namespace == "" {
			return errcode.ErrBadRequest.WithMessage("a permission needs a namespace (a project name or *)")
		}
		if len(p.Access) == 0 {
			return errcode.ErrBadRequest.WithMessage("the permission on %q grants no access", p.Namespace)
		}
		for _, x := range p.Access {
			if x.Effect != "" && x.Effect != "allow" && x.Effect != "deny" {
				return errcode.ErrBadRequest.WithMessage("effect %q is not allow or deny", x.Effect)
			}
			if !slices.Contains(robot.Grantable, meta.RobotAccess{Resource: x.Resource, Action: x.Action}) {
				return errcode.ErrBadRequest.WithMessage("%s:%s cannot be granted (see GET %s/permissions)", x.Resource, x.Action, Prefix)
			}
		}
	}
	return nil
}

// robotName checks a requested name and returns the stored (unprefixed) one.
func robotName(name, level, project string) (string, error) {
	if len(name) > 255 || !robotNameRE.MatchString(name) {
		return "", errcode.ErrBadRequest.WithMessage("robot name %q must be lower-case letters and digits, separated by ., _ or -", name)
	}
	if level == meta.RobotLevelProject {
		return project + "+" + name, nil
	}
	return name, nil
}

// projectOfPermissions is the project a project-level request names in its one permission.
func projectOfPermissions(perms []meta.RobotPermission) (string, error) {
	if len(perms) != 1 || perms[0].Namespace == "" || strings.Contains(perms[0].Namespace, "*") {
		return "", errcode.ErrBadRequest.WithMessage("a project-level robot needs exactly one permission naming its project")
	}
	return perms[0].Namespace, nil
}
