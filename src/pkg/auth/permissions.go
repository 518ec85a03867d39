package auth

import "github.com/berth-registry/berth/src/pkg/meta"

// Action is something a request wants to do to a project. Every endpoint names the one it needs and
// asks Authenticator.Authorize; docs/access.md lists the same table as roleActions.
type Action int

// Actions.
const (
	// Pull reads a project's content: manifests, blobs, tags, referrers, and its repositories and
	// artifacts through the Harbor API and the console.
	Pull Action = iota
	// Push uploads blobs and manifests and creates or moves tags.
	Push
	// ReferrerPush pushes a manifest with a subject (a signature, an SBOM, an attestation).
	ReferrerPush
	// Delete deletes a manifest, an artifact, a blob link or a repository.
	Delete
	// TagDelete deletes a tag.
	TagDelete
	// MetadataWrite changes a project's settings and metadata.
	MetadataWrite
	// MemberRead lists a project's members.
	MemberRead
	// MemberWrite adds, changes and removes a project's members.
	MemberWrite
	// ProjectDelete deletes the project.
	ProjectDelete
	// RobotManage lists, reads, creates, changes, refreshes and deletes the project's project-level
	// robot accounts (robot.MayManage); system-level robots need a system administrator.
	RobotManage
	numActions
)

var actionNames = [numActions]string{"pull", "push", "referrer-push", "delete", "tag-delete", "metadata-write",
	"member-read", "member-write", "project-delete", "robot-manage"}

func (a Action) String() string {
	if a >= 0 && a < numActions {
		return actionNames[a]
	}
	return "unknown"
}

// Actions returns every action, in order.
func Actions() []Action {
	out := make([]Action, numActions)
	for i := range out {
		out[i] = Action(i)
	}
	return out
}

// roleActions is THE permission table: what each project role may do in its project. System
// administrators may do everything everywhere; anyone, logged in or not, may Pull from a public project.
var roleActions = map[meta.Role][]Action{
	meta.RoleProjectAdmin: {Pull, Push, ReferrerPush, Delete, TagDelete, MetadataWrite, MemberRead, MemberWrite, ProjectDelete, RobotManage},
	meta.RoleMaintainer:   {Pull, Push, ReferrerPush, Delete, TagDelete, MemberRead},
	meta.RoleDeveloper:    {Pull, Push, ReferrerPush, MemberRead},
	meta.RoleGuest:        {Pull, MemberRead},
	meta.RoleLimitedGuest: {Pull},
}

// roleMask is roleActions as bit sets, indexed by role.
var roleMask = func() [meta.RoleLimitedGuest + 1]uint32 {
	var m [meta.RoleLimitedGuest + 1]uint32
	for r, acts := range roleActions {
		for _, a := range acts {
			m[r] |= 1 << a
		}
	}
	return m
}()

// RoleAllows reports whether role may perform act (in its own project).
func RoleAllows(role meta.Role, act Action) bool {
	return role.Valid() && act >= 0 && act < numActions && roleMask[role]&(1<<act) != 0
}

// PublicAllows reports whether anyone may perform act on a public project.
func PublicAllows(act Action) bool { return act == Pull }

// Scope is the registry scope action that grants act to a robot account or a bearer token (Docker's
// token spec names three: "pull", "push" and "delete"): pushing a referrer is a push, deleting a tag a
// delete. "" means act is never granted that way (project settings and members need a user).
func (a Action) Scope() string {
	switch a {
	case Pull:
		return "pull"
	case Push, ReferrerPush:
		return "push"
	case Delete, TagDelete:
		return "delete"
	}
	return ""
}
