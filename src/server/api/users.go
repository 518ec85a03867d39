package api

import (
	"context"
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

// userCreationReq is Harbor's UserCreationReq.
type userCreationReq struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Realname string `json:"realname"`
	Password string `json:"password"`
	Comment  string `json:"comment"`
}

// userResp is Harbor's UserResp.
type userResp struct {
	UserID          int64      `json:"user_id"`
	Username        string     `json:"username"`
	Email           string     `json:"email"`
	Realname        string     `json:"realname"`
	Comment         string     `json:"comment"`
	SysadminFlag    bool       `json:"sysadmin_flag"`
	AdminRoleInAuth bool       `json:"admin_role_in_auth"`
	CreationTime    harborTime `json:"creation_time"`
	UpdateTime      harborTime `json:"update_time"`
}

func toUserResp(u *meta.User) userResp {
	return userResp{UserID: u.ID, Username: u.Username, Email: u.Email, Realname: u.Realname, Comment: u.Comment,
		SysadminFlag: u.Sysadmin, CreationTime: harborTime(u.CreationTime), UpdateTime: harborTime(u.UpdateTime)}
}

// listUsers answers GET /users (system administrators) with ?q=username=~<part> or username=<name>,
// page and page_size.
func (a *API) listUsers(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	return listPage(w, r, func(q url.Values, pg paging.Page) ([]userResp, int64, error) {
		name, exact, err := parseFieldQuery(q.Get("q"), "username")
		if err != nil {
			return nil, 0, err
		}
		users, total, err := a.findUsers(r.Context(), name, exact, pg)
		return listed(users, total, err, "user", toUserResp)
	})
}

// searchUsers answers GET /users/search?username=<part> for any logged-in user (to add members), with
// user_id and username only.
func (a *API) searchUsers(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.requireUser(r); err != nil {
		return err
	}
	type item struct {
		UserID   int64  `json:"user_id"`
		Username string `json:"username"`
	}
	return listPage(w, r, func(q url.Values, pg paging.Page) ([]item, int64, error) {
		name := q.Get("username")
		if name == "" {
			return nil, 0, errcode.ErrBadRequest.WithMessage("username is required")
		}
		users, total, err := a.findUsers(r.Context(), name, false, pg)
		return listed(users, total, err, "user", func(u *meta.User) item { return item{u.ID, u.Username} })
	})
}

// findUsers returns a page of the users whose name contains name, or the one named name when exact.
func (a *API) findUsers(ctx context.Context, name string, exact bool, pg paging.Page) ([]*meta.User, int64, error) {
	if !exact {
		return a.users.ListUsers(ctx, name, pg.Offset(), pg.Size)
	}
	u, err := a.users.GetUserByName(ctx, name)
	switch {
	case errors.Is(err, meta.ErrNotFound):
		return nil, 0, nil
	case err != nil:
		return nil, 0, err
	}
	return []*meta.User{u}, 1, nil
}

// createUser answers POST /users (system administrators): 201 with Location.
func (a *API) createUser(w http.ResponseWriter, r *http.Request) error {
	who, err := a.adminCaller(r)
	if err != nil {
		return err
	}
	var req userCreationReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if err := admin.ValidateUserName(req.Username); err != nil {
		return err
	}
	hash, err := admin.PasswordHash(req.Password)
	if err != nil {
		return err
	}
	u := &meta.User{Username: req.Username, Email: req.Email, Realname: req.Realname, Comment: req.Comment, PasswordHash: hash}
	id, err := a.users.CreateUser(r.Context(), u)
	if errors.Is(err, meta.ErrConflict) {
		return errcode.ErrConflict.WithMessage("username %s is already used", req.Username)
	}
	if err != nil {
		return storeError(err, "user")
	}
	a.record(who, 0, u.Username, "user", "create")
	return created(w, Prefix+"/users/"+strconv.FormatInt(id, 10))
}

// currentUser answers GET /users/current.
func (a *API) currentUser(w http.ResponseWriter, r *http.Request) error {
	who, err := a.requireUser(r)
	if err != nil {
		return err
	}
	if who.UserID == 0 {
		return errcode.ErrNotFound.WithMessage("%s is not a user", who.Name)
	}
	u, err := a.users.GetUser(r.Context(), who.UserID)
	if err != nil {
		return storeError(err, "user")
	}
	return writeOK(w, toUserResp(u))
}

// userFor returns the user of the path for a system administrator or the user itself (self true).
func (a *API) userFor(r *http.Request) (u *meta.User, who auth.Principal, err error) {
	if who, err = a.requireUser(r); err != nil {
		return nil, who, err
	}
	id, err := admin.ParseID("user id", r.PathValue("id"))
	if err != nil {
		return nil, who, err
	}
	if !who.Admin && who.UserID != id {
		return nil, who, errcode.ErrForbidden.WithMessage("only system administrators may see other users")
	}
	u, err = a.users.GetUser(r.Context(), id)
	if err != nil {
		return nil, who, storeError(err, "user "+r.PathValue("id"))
	}
	return u, who, nil
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) error {
	u, _, err := a.userFor(r)
	if err != nil {
		return err
	}
	return writeOK(w, toUserResp(u))
}

// userProfileReq is Harbor's UserProfile; absent fields keep their value.
type userProfileReq struct {
	Email    *string `json:"email"`
	Realname *string `json:"realname"`
	Comment  *string `json:"comment"`
}

// passwordReq is Harbor's PasswordReq.
type passwordReq struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

// sysadminReq is the body of PUT /users/{id}/sysadmin.
type sysadminReq struct {
	SysadminFlag *bool `json:"sysadmin_flag"`
}

// updateUser answers PUT /users/{id} with Harbor's UserProfile: email, realname, comment.
func (a *API) updateUser(w http.ResponseWriter, r *http.Request) error {
	return editUser(a, w, r, a.userFor, func(u *meta.User, _ auth.Principal, req *userProfileReq) error {
		for dst, src := range map[*string]*string{&u.Email: req.Email, &u.Realname: req.Realname, &u.Comment: req.Comment} {
			if src != nil {
				*dst = *src
			}
		}
		return nil
	})
}

// setPassword answers PUT /users/{id}/password with Harbor's PasswordReq. A user changing its own
// password gives the old one; a system administrator changing another's does not.
func (a *API) setPassword(w http.ResponseWriter, r *http.Request) error {
	return editUser(a, w, r, a.userFor, func(u *meta.User, who auth.Principal, req *passwordReq) error {
		if who.UserID == u.ID && !auth.CheckPassword(u.PasswordHash, req.OldPassword) {
			return errcode.ErrForbidden.WithMessage("the old password is wrong")
		}
		hash, err := admin.PasswordHash(req.NewPassword)
		if err != nil {
			return err
		}
		u.PasswordHash = hash
		return nil
	})
}

// setSysadmin answers PUT /users/{id}/sysadmin with {"sysadmin_flag": bool} (system administrators; not
// on their own account, so that the last one cannot lock everyone out).
func (a *API) setSysadmin(w http.ResponseWriter, r *http.Request) error {
	return editUser(a, w, r, a.adminTarget, func(u *meta.User, _ auth.Principal, req *sysadminReq) error {
		if req.SysadminFlag == nil {
			return errcode.ErrBadRequest.WithMessage("sysadmin_flag is required")
		}
		u.Sysadmin = *req.SysadminFlag
		return nil
	})
}

// editUser serves the PUT endpoints that change one user: target finds the user of the path and checks
// that the caller may change it, and only then is the body decoded into a T (decodeBody); edit applies
// it to the user or returns the handler's error. The user is then stored, the authenticator forgets its
// cached credentials and the change is audited as an "update".
func editUser[T any](a *API, w http.ResponseWriter, r *http.Request,
	target func(*http.Request) (*meta.User, auth.Principal, error),
	edit func(u *meta.User, who auth.Principal, req *T) error) error {
	u, who, err := target(r)
	if err != nil {
		return err
	}
	var req T
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if err := edit(u, who, &req); err != nil {
		return err
	}
	if err := a.users.UpdateUser(r.Context(), u); err != nil {
		return storeError(err, "user "+u.Username)
	}
	a.auth.ForgetUser(u.Username)
	a.record(who, 0, u.Username, "user", "update")
	return emptyOK(w)
}

// deleteUser answers DELETE /users/{id} (system administrators, not their own account).
func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) error {
	u, who, err := a.adminTarget(r)
	if err != nil {
		return err
	}
	if err := a.users.DeleteUser(r.Context(), u.ID); err != nil {
		return storeError(err, "user "+u.Username)
	}
	a.auth.ForgetUser(u.Username)
	a.auth.ForgetRoles()
	a.record(who, 0, u.Username, "user", "delete")
	return emptyOK(w)
}

// adminTarget returns the user of the path for a system administrator acting on another account.
func (a *API) adminTarget(r *http.Request) (*meta.User, auth.Principal, error) {
	u, who, err := a.userFor(r)
	if err == nil {
		err = adminOnly(who)
	}
	if err == nil && u.ID == who.UserID {
		err = errcode.ErrForbidden.WithMessage("system administrators may not do this to their own account")
	}
	return u, who, err
}

// userByRef finds a member_user: by user_id when set, else by username.
func (a *API) userByRef(ctx context.Context, id int64, name string) (*meta.User, error) {
	var u *meta.User
	var err error
	switch {
	case id > 0:
		u, err = a.users.GetUser(ctx, id)
	case name != "":
		u, err = a.users.GetUserByName(ctx, name)
	default:
		return nil, errcode.ErrBadRequest.WithMessage("member_user needs a user_id or a username")
	}
	if errors.Is(err, meta.ErrNotFound) {
		return nil, errcode.ErrNotFound.WithMessage("user not found")
	}
	if err != nil {
		return nil, storeError(err, "user")
	}
	return u, nil
}
