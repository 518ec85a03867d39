package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/robot"
	"github.com/berth-registry/berth/src/server/paging"
)

// Robot accounts, Harbor's /robots API (admin only). A robot's secret is returned once, by POST and
// PATCH, and stored hashed.

func (a *API) robotRoutes() {
	m := a.mux
	m.HandleFunc("GET "+Prefix+"/robots", a.handle(a.listRobots))
	m.HandleFunc("POST "+Prefix+"/robots", a.handle(a.createRobot))
	m.HandleFunc("GET "+Prefix+"/robots/{robot_id}", a.handle(a.getRobot))
	m.HandleFunc("PUT "+Prefix+"/robots/{robot_id}", a.handle(a.updateRobot))
	m.HandleFunc("PATCH "+Prefix+"/robots/{robot_id}", a.handle(a.refreshRobotSecret))
	m.HandleFunc("DELETE "+Prefix+"/robots/{robot_id}", a.handle(a.deleteRobot))
	m.HandleFunc("GET "+Prefix+"/permissions", a.handle(a.listPermissions))
}

// handle adapts a handler that returns its error.
func (a *API) handle(f func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			a.fail(w, r, err)
		}
	}
}

// adminRobot returns the robot of the path for an admin request.
func (a *API) adminRobot(r *http.Request) (*meta.Robot, error) {
	if err := a.requireAdmin(r); err != nil {
		return nil, err
	}
	id, err := strconv.ParseInt(r.PathValue("robot_id"), 10, 64)
	if err != nil || id <= 0 {
		return nil, errcode.ErrBadRequest.WithMessage("robot id must be a positive integer, got %q", r.PathValue("robot_id"))
	}
	rb, err := a.robots.GetRobot(r.Context(), id)
	if err != nil {
		return nil, storeError(err, "robot "+strconv.FormatInt(id, 10))
	}
	return rb, nil
}

// listRobots answers GET /robots; q takes Harbor's Level=, ProjectID= and name=~ terms.
func (a *API) listRobots(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
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

func (a *API) getRobot(w http.ResponseWriter, r *http.Request) error {
	rb, err := a.adminRobot(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.robotToJSON(rb))
	return nil
}

func (a *API) createRobot(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	var req robotReq
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	rb := &meta.Robot{Description: req.Description, Level: req.Level, Disabled: req.Disable, Permissions: req.Permissions}
	var project string
	switch req.Level {
	case meta.RobotLevelSystem:
	case meta.RobotLevelProject:
		var err error
		if project, err = projectOfPermissions(req.Permissions); err != nil {
			return err
		}
		p, err := a.projects.GetProjectByName(r.Context(), project)
		if err != nil {
			return storeError(err, "project "+project)
		}
		rb.ProjectID = p.ID
	default:
		return errcode.ErrBadRequest.WithMessage("level must be %q or %q, got %q", meta.RobotLevelSystem, meta.RobotLevelProject, req.Level)
	}
	var err error
	if rb.Name, err = robotName(req.Name, req.Level, project); err != nil {
		return err
	}
	if err := a.checkRobotPermissions(r, rb.Level, project, rb.Permissions); err != nil {
		return err
	}
	if err := setDuration(rb, req.Duration, time.Now()); err != nil {
		return err
	}
	secret, err := a.newRobotSecret(req.Secret)
	if err != nil {
		return err
	}
	if rb.SecretHash, err = robot.HashSecret(secret); err != nil {
		return errcode.ErrInternal.Wrap(err, "hashing the secret")
	}
	id, err := a.robots.CreateRobot(r.Context(), rb)
	if err != nil {
		return storeError(err, "a robot named "+a.robotPrefix+rb.Name)
	}
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
	rb, err := a.adminRobot(r)
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
	rb.Description, rb.Disabled, rb.Permissions = req.Description, req.Disable, req.Permissions
	if req.Duration != nil && *req.Duration != rb.Duration {
		if err := setDuration(rb, req.Duration, rb.CreationTime); err != nil {
			return err
		}
	}
	if err := a.robots.UpdateRobot(r.Context(), rb); err != nil {
		return storeError(err, "robot "+strconv.FormatInt(rb.ID, 10))
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// refreshRobotSecret answers PATCH: a new secret, the caller's ({"secret":...}) or a generated one.
func (a *API) refreshRobotSecret(w http.ResponseWriter, r *http.Request) error {
	rb, err := a.adminRobot(r)
	if err != nil {
		return err
	}
	var req robotSec
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
	}
	secret, err := a.newRobotSecret(req.Secret)
	if err != nil {
		return err
	}
	if rb.SecretHash, err = robot.HashSecret(secret); err != nil {
		return errcode.ErrInternal.Wrap(err, "hashing the secret")
	}
	if err := a.robots.UpdateRobot(r.Context(), rb); err != nil {
		return storeError(err, "robot "+strconv.FormatInt(rb.ID, 10))
	}
	writeJSON(w, http.StatusOK, robotSec{Secret: secret})
	return nil
}

func (a *API) deleteRobot(w http.ResponseWriter, r *http.Request) error {
	rb, err := a.adminRobot(r)
	if err != nil {
		return err
	}
	if err := a.robots.DeleteRobot(r.Context(), rb.ID); err != nil {
		return storeError(err, "robot "+strconv.FormatInt(rb.ID, 10))
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// listPermissions answers GET /permissions: what robots may be granted. Both levels grant project
// permissions; Berth has no system-wide ones to grant.
func (a *API) listPermissions(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, permissionsJSON{System: []meta.RobotAccess{}, Project: robot.Grantable})
	return nil
}
