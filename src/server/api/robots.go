package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/robot"
	"github.com/berth-registry/berth/src/server/paging"
)

// Robot accounts, Harbor's /robots API: system administrators manage every robot, project
// administrators the project-level robots of their projects (robot.MayManage). A robot's secret is
// returned once, by POST and PATCH, and stored hashed.

// managedRobot returns the robot of the path, its project (nil for a system-level robot) and the
// caller, when the caller may manage it (robot.MayManage).
func (a *API) managedRobot(r *http.Request) (*meta.Robot, *meta.Project, auth.Principal, error) {
	who, err := a.requireUser(r)
	if err != nil {
		return nil, nil, who, err
	}
	id, err := strconv.ParseInt(r.PathValue("robot_id"), 10, 64)
	if err != nil || id <= 0 {
		return nil, nil, who, errcode.ErrBadRequest.WithMessage("robot id must be a positive integer, got %q", r.PathValue("robot_id"))
	}
	rb, err := a.robots.GetRobot(r.Context(), id)
	if err != nil {
		return nil, nil, who, storeError(err, "robot "+strconv.FormatInt(id, 10))
	}
	var project *meta.Project
	if rb.ProjectID != 0 {
		if project, err = a.projects.GetProject(r.Context(), rb.ProjectID); err != nil {
			return nil, nil, who, storeError(err, "project "+strconv.FormatInt(rb.ProjectID, 10))
		}
	}
	if err := robot.MayManage(r.Context(), a.auth, who, project); err != nil {
		return nil, nil, who, apiAuthError(err, who)
	}
	return rb, project, who, nil
}

// mayGrant checks that who may manage the robots of project (nil: system level) and give them perms.
func (a *API) mayGrant(r *http.Request, who auth.Principal, project *meta.Project, perms []meta.RobotPermission) error {
	err := robot.MayManage(r.Context(), a.auth, who, project)
	if err == nil && project != nil {
		err = robot.MayGrant(r.Context(), a.auth, who, project, perms)
	}
	return apiAuthError(err, who)
}

// listRobots answers GET /robots; q takes Harbor's Level=, ProjectID= and name=~ terms.
func (a *API) listRobots(w http.ResponseWriter, r *http.Request) error {
	who, err := a.requireUser(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	pg, err := paging.Parse(q)
	if err != nil {
		return err
	}
	f, err := robotFilter(q.Get("q"))
	if err != nil {
		return err
	}
	if err := a.mayList(r, who, f); err != nil {
		return err
	}
	list, total, err := a.robots.ListRobots(r.Context(), f, pg.Offset(), pg.Size)
	if err != nil {
		return storeError(err, "robot")
	}
	out := make([]robotJSON, 0, len(list))
	for _, rb := range list {
		out = append(out, a.robotToJSON(rb))
	}
	paging.SetHeaders(w, r, total, pg)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// robotFilter parses q: comma-separated key=value terms, "~" before a value for a substring match.
func robotFilter(q string) (meta.RobotFilter, error) {
	var f meta.RobotFilter
	for _, term := range strings.Split(q, ",") {
		if term == "" {
			continue
		}
		k, v, _ := strings.Cut(term, "=")
		switch strings.ToLower(k) {
		case "level":
			f.Level = v
		case "projectid", "project_id":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return f, errcode.ErrBadRequest.WithMessage("ProjectID must be a positive integer, got %q", v)
			}
			f.ProjectID = n
		case "name":
			f.Name = strings.TrimPrefix(v, "~")
		default:
			return f, errcode.ErrBadRequest.WithMessage("unsupported query term %q (Level, ProjectID, name)", k)
		}
	}
	return f, nil
}

// mayList lets system administrators list every robot and project administrators those of their
// project (q=Level=project,ProjectID=<id>, as Harbor's console asks).
func (a *API) mayList(r *http.Request, who auth.Principal, f meta.RobotFilter) error {
	var project *meta.Project
	if f.ProjectID != 0 && f.Level == meta.RobotLevelProject {
		var err error
		if project, err = a.projects.GetProject(r.Context(), f.ProjectID); err != nil {
			return storeError(err, "project "+strconv.FormatInt(f.ProjectID, 10))
		}
	}
	return apiAuthError(robot.MayManage(r.Context(), a.auth, who, project), who)
}

func (a *API) getRobot(w http.ResponseWriter, r *http.Request) error {
	rb, _, _, err := a.managedRobot(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.robotToJSON(rb))
	return nil
}

func (a *API) createRobot(w http.ResponseWriter, r *http.Request) error {
	who, req, err := authorizedBody[robotReq](w, r, a.requireUser)
	if err != nil {
		return err
	}
	rb := &meta.Robot{Description: req.Description, Level: req.Level, Disabled: req.Disable, Permissions: req.Permissions}
	var project string
	var scope *meta.Project // the robot's project; nil for a system-level robot
	switch req.Level {
	case meta.RobotLevelSystem:
	case meta.RobotLevelProject:
		if project, err = projectOfPermissions(req.Permissions); err != nil {
			return err
		}
		if scope, err = a.projects.GetProjectByName(r.Context(), project); err != nil {
			return storeError(err, "project "+project)
		}
		rb.ProjectID = scope.ID
	default:
		return errcode.ErrBadRequest.WithMessage("level must be %q or %q, got %q", meta.RobotLevelSystem, meta.RobotLevelProject, req.Level)
	}
	if err := a.mayGrant(r, who, scope, rb.Permissions); err != nil {
		return err
	}
	if rb.Name, err = robotName(req.Name, req.Level, project); err != nil {
		return err
	}
	if err := a.checkRobotPermissions(r, rb.Level, project, rb.Permissions); err != nil {
		return err
	}
	if err := setDuration(rb, req.Duration, time.Now()); err != nil {
		return err
	}
	secret, err := a.setRobotSecret(rb, req.Secret)
	if err != nil {
		return err
	}
	id, err := a.robots.CreateRobot(r.Context(), rb)
	if err != nil {
		return storeError(err, "a robot named "+a.robotPrefix+rb.Name)
	}
	a.record(who, rb.ProjectID, a.robotPrefix+rb.Name, "robot", "create")
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+strconv.FormatInt(id, 10))
	writeJSON(w, http.StatusCreated, robotCreated{ID: id, Name: a.robotPrefix + rb.Name, Secret: secret,
		CreationTime: harborTime(rb.CreationTime), ExpiresAt: expiresAt(rb)})
	return nil
}

// checkRobotPermissions validates perms (checkPermissions) and that each namespace but "*" is a
// project.
func (a *API) checkRobotPermissions(r *http.Request, level, project string, perms []meta.RobotPermission) error {
	if err := checkPermissions(level, project, perms); err != nil {
		return err
	}
	for _, p := range perms {
		if p.Namespace == "*" {
			continue
		}
		if _, err := a.projects.GetProjectByName(r.Context(), p.Namespace); err != nil {
			return storeError(err, "project "+p.Namespace)
		}
	}
	return nil
}

// setRobotSecret sets rb's secret hash for a new secret (newRobotSecret) and returns the secret, to be
// shown once.
func (a *API) setRobotSecret(rb *meta.Robot, given string) (string, error) {
	secret, err := a.newRobotSecret(given)
	if err != nil {
		return "", err
	}
	if rb.SecretHash, err = robot.HashSecret(secret); err != nil {
		return "", errcode.ErrInternal.Wrap(err, "hashing the secret")
	}
	return secret, nil
}

// newRobotSecret returns the caller's secret when it meets the rules, else a generated one.
func (a *API) newRobotSecret(given string) (string, error) {
	if given != "" {
		if err := robot.ValidSecret(given); err != nil {
			return "", errcode.ErrBadRequest.WithMessage("%v", err)
		}
		return given, nil
	}
	s, err := robot.NewSecret()
	if err != nil {
		return "", errcode.ErrInternal.Wrap(err, "generating the secret")
	}
	return s, nil
}

// updateRobot answers PUT: description, permissions, duration and disable change; name and level
// must stay as they are.
func (a *API) updateRobot(w http.ResponseWriter, r *http.Request) error {
	rb, scope, who, err := a.managedRobot(r)
	if err != nil {
		return err
	}
	var req robotReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.Name != "" && req.Name != a.robotPrefix+rb.Name {
		return errcode.ErrBadRequest.WithMessage("a robot cannot be renamed")
	}
	if req.Level != "" && req.Level != rb.Level {
		return errcode.ErrBadRequest.WithMessage("a robot's level cannot change")
	}
	project := ""
	if rb.Level == meta.RobotLevelProject {
		project, _, _ = strings.Cut(rb.Name, "+")
	}
	if err := a.checkRobotPermissions(r, rb.Level, project, req.Permissions); err != nil {
		return err
	}
	if err := a.mayGrant(r, who, scope, req.Permissions); err != nil {
		return err
	}
	rb.Description, rb.Disabled, rb.Permissions = req.Description, req.Disable, req.Permissions
	if req.Duration != nil && *req.Duration != rb.Duration {
		if err := setDuration(rb, req.Duration, rb.CreationTime); err != nil {
			return err
		}
	}
	if err := a.robots.UpdateRobot(r.Context(), rb); err != nil {
		return storeError(err, "robot "+strconv.FormatInt(rb.ID, 10))
	}
	a.record(who, rb.ProjectID, a.robotPrefix+rb.Name, "robot", "update")
	w.WriteHeader(http.StatusOK)
	return nil
}

// refreshRobotSecret answers PATCH: a new secret, the caller's ({"secret":...}) or a generated one.
func (a *API) refreshRobotSecret(w http.ResponseWriter, r *http.Request) error {
	rb, _, who, err := a.managedRobot(r)
	if err != nil {
		return err
	}
	var req robotSec
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
	}
	secret, err := a.setRobotSecret(rb, req.Secret)
	if err != nil {
		return err
	}
	if err := a.robots.UpdateRobot(r.Context(), rb); err != nil {
		return storeError(err, "robot "+strconv.FormatInt(rb.ID, 10))
	}
	a.record(who, rb.ProjectID, a.robotPrefix+rb.Name, "robot", "update")
	writeJSON(w, http.StatusOK, robotSec{Secret: secret})
	return nil
}

func (a *API) deleteRobot(w http.ResponseWriter, r *http.Request) error {
	rb, _, who, err := a.managedRobot(r)
	if err != nil {
		return err
	}
	if err := a.robots.DeleteRobot(r.Context(), rb.ID); err != nil {
		return storeError(err, "robot "+strconv.FormatInt(rb.ID, 10))
	}
	a.record(who, rb.ProjectID, a.robotPrefix+rb.Name, "robot", "delete")
	w.WriteHeader(http.StatusOK)
	return nil
}

// listPermissions answers GET /permissions to logged-in callers (project administrators build their
// robots from it): what robots may be granted. Both levels grant project permissions; Berth has no
// system-wide ones to grant.
func (a *API) listPermissions(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.requireUser(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, permissionsJSON{System: []meta.RobotAccess{}, Project: robot.Grantable})
	return nil
}
