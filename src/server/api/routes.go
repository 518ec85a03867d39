package api

import "net/http"

// route is one endpoint: its method and path below Prefix, and the handler, which returns its error
// (handle writes it).
type route struct {
	method, path string
	serve        func(w http.ResponseWriter, r *http.Request) error
}

// routeGroup is a set of endpoints served only when on (their dependency is configured).
type routeGroup struct {
	on     bool
	routes []route
}

// routeTable is every endpoint of the API, grouped by the dependency it needs. Repository names in
// paths are URL-encoded once more by Harbor's clients ("a/b" travels as a%252Fb): see repoName.
// Harbor's swagger (and so its generated client) spells the metadata collection with a trailing slash
// too: routes serves both spellings of every path in slashToo, and README's table lists it once.
func (a *API) routeTable() []routeGroup {
	const (
		get, put, post, del, head, patch = http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodHead, http.MethodPatch
		project, metadatas               = "/projects/{project}", "/projects/{project}/metadatas"
		repo                             = "/projects/{project}/repositories/{repo}"
		artifact                         = repo + "/artifacts/{reference}"
		member                           = "/projects/{project}/members"
		retention, execution             = "/retentions/{id}", "/retentions/{id}/executions"
	)
	return []routeGroup{
		{on: true, routes: []route{
			{get, "/ping", a.getPing}, {get, "/health", a.getHealth},
			{get, "/projects", a.listProjects}, {head, "/projects", a.headProject}, {post, "/projects", a.createProject},
			{get, project, a.getProject}, {put, project, a.updateProject}, {del, project, a.deleteProject},
			{get, metadatas, a.listMetadata}, {post, metadatas, a.addMetadata},
			{get, metadatas + "/{meta}", a.getMetadata}, {put, metadatas + "/{meta}", a.updateMetadata},
			{del, metadatas + "/{meta}", a.deleteMetadata},
			{get, "/registries", a.listRegistries}, {post, "/registries", a.createRegistry},
			{post, "/registries/ping", a.pingRegistry},
			{get, "/registries/{id}", a.getRegistry}, {put, "/registries/{id}", a.updateRegistry},
			{del, "/registries/{id}", a.deleteRegistry},
		}},
		{on: a.artifacts != nil, routes: []route{
			{get, project + "/repositories", a.listRepositories},
			{get, repo, a.getRepository}, {del, repo, a.deleteRepository},
			{get, repo + "/artifacts", a.listArtifacts},
			{get, artifact, a.getArtifact}, {del, artifact, a.deleteArtifact},
			{get, artifact + "/tags", a.listArtifactTags},
		}},
		{on: a.robots != nil, routes: []route{
			{get, "/robots", a.listRobots}, {post, "/robots", a.createRobot},
			{get, "/robots/{robot_id}", a.getRobot}, {put, "/robots/{robot_id}", a.updateRobot},
			{patch, "/robots/{robot_id}", a.refreshRobotSecret}, {del, "/robots/{robot_id}", a.deleteRobot},
			{get, "/permissions", a.listPermissions},
		}},
		{on: a.users != nil && a.members != nil, routes: []route{
			{get, "/users", a.listUsers}, {post, "/users", a.createUser},
			{get, "/users/current", a.currentUser}, {get, "/users/search", a.searchUsers},
			{get, "/users/{id}", a.getUser}, {put, "/users/{id}", a.updateUser}, {del, "/users/{id}", a.deleteUser},
			{put, "/users/{id}/password", a.setPassword}, {put, "/users/{id}/sysadmin", a.setSysadmin},
			{get, member, a.listMembers}, {post, member, a.addMember},
			{get, member + "/{mid}", a.getMember}, {put, member + "/{mid}", a.updateMember},
			{del, member + "/{mid}", a.deleteMember},
		}},
		{on: a.auditLog != nil, routes: []route{{get, "/audit-logs", a.listAuditLogs}}},
		{on: a.retentions != nil, routes: []route{
			{get, "/retentions/metadatas", a.retentionMetadata}, {post, "/retentions", a.createRetention},
			{get, retention, a.getRetention}, {put, retention, a.updateRetention}, {del, retention, a.deleteRetention},
			{post, execution, a.startRetention}, {get, execution, a.listRetentionExecutions},
			{patch, execution + "/{eid}", a.stopRetention},
			{get, execution + "/{eid}/tasks", a.listRetentionTasks},
			{get, execution + "/{eid}/tasks/{tid}", a.getRetentionTaskLog},
		}},
		{on: a.usage != nil, routes: []route{
			{get, "/quotas", a.listQuotas}, {get, "/quotas/{id}", a.getQuota}, {put, "/quotas/{id}", a.updateQuota},
			{get, project + "/summary", a.projectSummary},
		}},
		{on: a.volumes != nil, routes: []route{{get, "/systeminfo/volumes", a.getVolumes}}},
		{on: a.gc != nil, routes: []route{
			{get, "/system/gc", a.listGC},
			{get, "/system/gc/schedule", a.getGCSchedule}, {post, "/system/gc/schedule", a.putGCSchedule},
			{put, "/system/gc/schedule", a.putGCSchedule},
			{get, "/system/gc/{id}", a.getGC}, {put, "/system/gc/{id}", a.stopGC},
			{get, "/system/gc/{id}/log", a.getGCLog},
		}},
	}
}

// slashToo are the paths also served with a trailing slash (Harbor's swagger spelling).
var slashToo = map[string]bool{"/projects/{project}/metadatas": true}

// routes registers the endpoints of every group that is on, each through handle.
func (a *API) routes() {
	for _, g := range a.routeTable() {
		if !g.on {
			continue
		}
		for _, rt := range g.routes {
			a.mux.HandleFunc(rt.method+" "+Prefix+rt.path, a.handle(rt.serve))
			if slashToo[rt.path] {
				a.mux.HandleFunc(rt.method+" "+Prefix+rt.path+"/{$}", a.handle(rt.serve))
			}
		}
	}
}

// handle adapts a handler that returns its error.
func (a *API) handle(f func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			a.fail(w, r, err)
		}
	}
}
