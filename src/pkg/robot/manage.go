package robot

import (
	"context"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// Authorizer is the one permission path every endpoint asks (auth.Authenticator).
type Authorizer interface {
	// Authorize returns nil when p may perform act on project (nil: a registry-wide resource), else
	// an UNAUTHORIZED or DENIED error.
	Authorize(ctx context.Context, p auth.Principal, project *meta.Project, act auth.Action) error
}

var _ Authorizer = (*auth.Authenticator)(nil)

// MayManage returns nil when p may list, read, create, change, refresh the secret of or delete the
// robots of project: for project-level robots, auth.RobotManage on their project (Harbor's
// projectAdmin, or a system administrator); for system-level robots (project nil), a system
// administrator. Robots and bearer tokens never manage robots (RobotManage has no token scope).
func MayManage(ctx context.Context, az Authorizer, p auth.Principal, project *meta.Project) error {
	return az.Authorize(ctx, p, project, auth.RobotManage)
}

// MayGrant returns nil when every access perms grant on project is one p itself may perform there:
// whoever creates or changes a project-level robot cannot give it more than the project's own
// permissions hold for them. Entries with effect "deny" grant nothing and pass; unknown actions are
// left to the request's validation.
func MayGrant(ctx context.Context, az Authorizer, p auth.Principal, project *meta.Project, perms []meta.RobotPermission) error {
	for _, perm := range perms {
		for _, x := range perm.Access {
			act, ok := scopeAction[x.Action]
			if x.Effect == "deny" || !ok {
				continue
			}
			if err := az.Authorize(ctx, p, project, act); err != nil {
				return err
			}
		}
	}
	return nil
}

// scopeAction is the action each grantable robot action allows (see Access.Allows).
var scopeAction = map[string]auth.Action{ActionPull: auth.Pull, ActionPush: auth.Push, ActionDelete: auth.Delete}
