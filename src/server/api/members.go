package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berth-registry/berth/src/pkg/admin"
	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/paging"
)

// memberEntity is Harbor's ProjectMemberEntity; entity_type "u" is a user (Berth has no groups).
type memberEntity struct {
	ID         int64  `json:"id"`
	ProjectID  int64  `json:"project_id"`
	EntityName string `json:"entity_name"`
	RoleName   string `json:"role_name"`
	RoleID     int64  `json:"role_id"`
	EntityID   int64  `json:"entity_id"`
	EntityType string `json:"entity_type"`
}

func toMemberEntity(m *meta.Member) memberEntity {
	return memberEntity{ID: m.ID, ProjectID: m.ProjectID, EntityName: m.Username, RoleName: m.Role.Name(),
		RoleID: int64(m.Role), EntityID: m.UserID, EntityType: "u"}
}

// addCreator makes the creator of a project, when it is a user, its projectAdmin member (as Harbor
// lists the creator among the members).
func (a *API) addCreator(r *http.Request, who auth.Principal, projectID int64) error {
	if a.members == nil || who.UserID == 0 {
		return nil
	}
	_, err := a.members.AddMember(r.Context(), &meta.Member{ProjectID: projectID, UserID: who.UserID, Role: meta.RoleProjectAdmin})
	if err != nil && !errors.Is(err, meta.ErrConflict) {
		return storeError(err, "member")
	}
	a.auth.ForgetRoles()
	return nil
}

// listMembers answers GET /projects/{project}/members with ?entityname=<part>, page, page_size.
func (a *API) listMembers(w http.ResponseWriter, r *http.Request) error {
	p, _, err := a.projectFor(r, auth.MemberRead)
	if err != nil {
		return err
	}
	return listPage(w, r, func(q url.Values, pg paging.Page) ([]memberEntity, int64, error) {
		members, total, err := a.members.ListMembers(r.Context(), p.ID, q.Get("entityname"), pg.Offset(), pg.Size)
		return listed(members, total, err, "members", toMemberEntity)
	})
}

// addMember answers POST /projects/{project}/members with Harbor's ProjectMember: role_id and
// member_user {user_id | username}. 201 with Location; CONFLICT when the user is a member already.
func (a *API) addMember(w http.ResponseWriter, r *http.Request) error {
	p, who, err := a.projectFor(r, auth.MemberWrite)
	if err != nil {
		return err
	}
	var req struct {
		RoleID     int64 `json:"role_id"`
		MemberUser *struct {
			UserID   int64  `json:"user_id"`
			Username string `json:"username"`
		} `json:"member_user"`
		MemberGroup any `json:"member_group"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	role, err := admin.MemberRole(req.RoleID)
	if err == nil && req.MemberUser == nil {
		err = errcode.ErrBadRequest.WithMessage("member_user is required (Berth has no user groups)")
	}
	if err != nil {
		return err
	}
	u, err := a.userByRef(r.Context(), req.MemberUser.UserID, req.MemberUser.Username)
	if err != nil {
		return err
	}
	m := &meta.Member{ProjectID: p.ID, UserID: u.ID, Role: role}
	id, err := a.members.AddMember(r.Context(), m)
	if errors.Is(err, meta.ErrConflict) {
		return errcode.ErrConflict.WithMessage("user %s is already a member of project %s", u.Username, p.Name)
	}
	if err != nil {
		return storeError(err, "member")
	}
	a.auth.ForgetRoles()
	a.record(who, p.ID, p.Name+":"+u.Username, "member", "create")
	return created(w, r.URL.Path+"/"+strconv.FormatInt(id, 10))
}

// memberFor returns the project and the member of the path, for act.
func (a *API) memberFor(r *http.Request, act auth.Action) (*meta.Project, *meta.Member, auth.Principal, error) {
	p, who, err := a.projectFor(r, act)
	if err != nil {
		return nil, nil, who, err
	}
	mid, err := admin.ParseID("member id", r.PathValue("mid"))
	if err != nil {
		return nil, nil, who, err
	}
	m, err := a.members.GetMember(r.Context(), p.ID, mid)
	if err != nil {
		return nil, nil, who, storeError(err, "member "+r.PathValue("mid"))
	}
	return p, m, who, nil
}

func (a *API) getMember(w http.ResponseWriter, r *http.Request) error {
	_, m, _, err := a.memberFor(r, auth.MemberRead)
	if err != nil {
		return err
	}
	return writeOK(w, toMemberEntity(m))
}

// updateMember answers PUT /projects/{project}/members/{mid} with Harbor's RoleRequest {role_id}.
func (a *API) updateMember(w http.ResponseWriter, r *http.Request) error {
	p, m, who, err := a.memberFor(r, auth.MemberWrite)
	if err != nil {
		return err
	}
	var req struct {
		RoleID int64 `json:"role_id"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	role, err := admin.MemberRole(req.RoleID)
	if err != nil {
		return err
	}
	if err := a.members.UpdateMemberRole(r.Context(), p.ID, m.ID, role); err != nil {
		return storeError(err, "member")
	}
	a.auth.ForgetRoles()
	a.record(who, p.ID, p.Name+":"+m.Username, "member", "update")
	return emptyOK(w)
}

func (a *API) deleteMember(w http.ResponseWriter, r *http.Request) error {
	p, m, who, err := a.memberFor(r, auth.MemberWrite)
	if err != nil {
		return err
	}
	if err := a.members.DeleteMember(r.Context(), p.ID, m.ID); err != nil {
		return storeError(err, "member")
	}
	a.auth.ForgetRoles()
	a.record(who, p.ID, p.Name+":"+m.Username, "member", "delete")
	return emptyOK(w)
}
