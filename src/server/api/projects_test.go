package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

const projects = "/api/v2.0/projects"

// createProjectCase is one request of TestCreateProject: the body, the status and error code it gets,
// and a check of the stored project.
type createProjectCase struct {
	name   string
	body   string
	header map[string]string
	status int
	code   string
	check  func(t *testing.T, p *meta.Project)
}

func TestCreateProject(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		regID := e.createRegistry("hub", "https://registry-1.docker.io", "pw")
		regNum := strings.TrimPrefix(regID, "/api/v2.0/registries/")

		cases := []createProjectCase{
			{name: "minimal", body: `{"project_name":"library"}`, status: 201, check: func(t *testing.T, p *meta.Project) {
				require.Equal(t, map[string]string{"public": "false"}, p.Metadata)
				require.EqualValues(t, -1, p.StorageLimit)
				require.Zero(t, p.RegistryID)
			}},
			{name: "metadata normalised and kept", status: 201,
				body: `{"project_name":"meta1","metadata":{"public":"TRUE","proxy_referrer_api":"1","proxy_referrer_cache_seconds":"060","custom":"x","nil":null}}`,
				check: func(t *testing.T, p *meta.Project) {
					require.Equal(t, map[string]string{"public": "true", "proxy_referrer_api": "true",
						"proxy_referrer_cache_seconds": "60", "custom": "x"}, p.Metadata)
				}},
			{name: "legacy public", body: `{"project_name":"legacy","public":true}`, status: 201,
				check: func(t *testing.T, p *meta.Project) { require.True(t, p.Public()) }},
			{name: "metadata.public wins over legacy", body: `{"project_name":"legacy2","public":true,"metadata":{"public":"false"}}`,
				status: 201, check: func(t *testing.T, p *meta.Project) { require.False(t, p.Public()) }},
			{name: "storage limit", body: `{"project_name":"quota","storage_limit":1048576}`, status: 201,
				check: func(t *testing.T, p *meta.Project) { require.EqualValues(t, 1048576, p.StorageLimit) }},
			{name: "proxy cache", status: 201,
				body:  `{"project_name":"hub","registry_id":` + regNum + `,"metadata":{"public":"true","proxy_referrer_api":"true","proxy_speed_kb":"-1","max_upstream_conn":"-1"},"storage_limit":-1}`,
				check: func(t *testing.T, p *meta.Project) { require.True(t, p.ProxyReferrerAPI()) }},
			{name: "registry_id 0 is no registry", body: `{"project_name":"zero","registry_id":0}`, status: 201,
				check: func(t *testing.T, p *meta.Project) { require.False(t, p.IsProxy()) }},
			{name: "name at the length limit", body: `{"project_name":"` + strings.Repeat("a", 255) + `"}`, status: 201},
			{name: "duplicate", body: `{"project_name":"library"}`, status: 409, code: "CONFLICT"},
			{name: "registry missing", body: `{"project_name":"p1","registry_id":999}`, status: 400, code: "BAD_REQUEST"},
			{name: "registry negative", body: `{"project_name":"p1","registry_id":-1}`, status: 400, code: "BAD_REQUEST"},
			{name: "storage limit invalid", body: `{"project_name":"p1","storage_limit":-2}`, status: 400, code: "BAD_REQUEST"},
			{name: "public not boolean", body: `{"project_name":"p1","metadata":{"public":"yes please"}}`, status: 400, code: "BAD_REQUEST"},
			{name: "referrer toggle not boolean", body: `{"project_name":"p1","metadata":{"proxy_referrer_api":"maybe"}}`, status: 400, code: "BAD_REQUEST"},
			{name: "cache seconds negative", body: `{"project_name":"p1","metadata":{"proxy_referrer_cache_seconds":"-1"}}`, status: 400, code: "BAD_REQUEST"},
			{name: "cache seconds not a number", body: `{"project_name":"p1","metadata":{"proxy_referrer_cache_seconds":"1h"}}`, status: 400, code: "BAD_REQUEST"},
			{name: "speed not int32", body: `{"project_name":"p1","metadata":{"proxy_speed_kb":"99999999999"}}`, status: 400, code: "BAD_REQUEST"},
			{name: "metadata value not a string", body: `{"project_name":"p1","metadata":{"public":true}}`, status: 400, code: "BAD_REQUEST"},
			{name: "metadata value too long", body: `{"project_name":"p1","metadata":{"x":"` + strings.Repeat("v", 256) + `"}}`, status: 400, code: "BAD_REQUEST"},
			{name: "metadata empty name", body: `{"project_name":"p1","metadata":{"":"v"}}`, status: 400, code: "BAD_REQUEST"},
			{name: "name missing", body: `{}`, status: 400, code: "BAD_REQUEST"},
		}
		for _, bad := range []string{"", "Library", "a..b", "-a", "a-", "_a", "a b", "a/b", "ä", strings.Repeat("a", 256)} {
			cases = append(cases, createProjectCase{name: "invalid name " + bad, body: `{"project_name":"` + bad + `"}`, status: 400, code: "BAD_REQUEST"})
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				w := e.must(req{method: http.MethodPost, path: projects, body: tc.body, header: tc.header}, tc.status)
				if tc.code != "" {
					require.Equal(t, tc.code, errCode(t, w))
					return
				}
				loc := w.Header().Get("Location")
				require.Regexp(t, `^/api/v2\.0/projects/[0-9]+$`, loc)
				var name struct {
					ProjectName string `json:"project_name"`
				}
				require.NoError(t, jsonUnmarshal(tc.body, &name))
				p, err := e.store.GetProjectByName(context.Background(), name.ProjectName)
				require.NoError(t, err)
				require.Equal(t, projects+"/"+itoa(p.ID), loc)
				if tc.check != nil {
					tc.check(t, p)
				}
			})
		}
	})
}

func TestCreateProjectLocationByName(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		w := e.must(req{method: http.MethodPost, path: projects, body: `{"project_name":"named"}`,
			header: map[string]string{"X-Resource-Name-In-Location": "true"}}, http.StatusCreated)
		require.Equal(t, projects+"/named", w.Header().Get("Location"))
	})
}

type projectOut struct {
	ProjectID    int64             `json:"project_id"`
	Name         string            `json:"name"`
	RegistryID   *int64            `json:"registry_id"`
	OwnerName    string            `json:"owner_name"`
	RepoCount    int64             `json:"repo_count"`
	Metadata     map[string]string `json:"metadata"`
	CreationTime string            `json:"creation_time"`
	UpdateTime   string            `json:"update_time"`
	CVEAllowlist struct {
		Items []any `json:"items"`
	} `json:"cve_allowlist"`
}

func TestGetProject(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		pub := e.createProject(map[string]any{"project_name": "pub", "metadata": map[string]string{"public": "true"}})
		priv := e.createProject(map[string]any{"project_name": "priv"})
		num := e.createProject(map[string]any{"project_name": "123"})
		e.addRepo(idOf(t, pub))
		e.addRepo(idOf(t, pub))
		e.addRepo(idOf(t, pub))
		byName := map[string]string{"X-Is-Resource-Name": "true"}

		cases := []struct {
			name   string
			get    req // a GET: path, user and header
			status int
			want   string // project name
		}{
			{"by id", req{path: pub}, 200, "pub"},
			{"by name", req{path: projects + "/priv", header: byName}, 200, "priv"},
			{"non-numeric without header is a name", req{path: projects + "/priv"}, 200, "priv"},
			{"numeric name needs the header", req{path: projects + "/123", header: byName}, 200, "123"},
			{"numeric without header is an id", req{path: projects + "/" + itoa(idOf(t, num))}, 200, "123"},
			{"header false means id", req{path: projects + "/" + itoa(idOf(t, priv)), header: map[string]string{"X-Is-Resource-Name": "false"}}, 200, "priv"},
			{"missing id", req{path: projects + "/999"}, 404, ""},
			{"missing name", req{path: projects + "/nope"}, 404, ""},
			{"anonymous public", req{path: projects + "/pub", user: "anon"}, 200, "pub"},
			{"anonymous private", req{path: priv, user: "anon"}, 401, ""},
			{"anonymous missing", req{path: projects + "/nope", user: "anon"}, 401, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				get := tc.get
				get.method = http.MethodGet
				w := e.must(get, tc.status)
				if tc.want == "" {
					return
				}
				got := decode[projectOut](t, w)
				require.Equal(t, tc.want, got.Name)
				require.Equal(t, "application/json", w.Header().Get("Content-Type"))
			})
		}

		w := e.must(req{method: http.MethodGet, path: pub}, http.StatusOK)
		got := decode[projectOut](t, w)
		require.Equal(t, idOf(t, pub), got.ProjectID)
		require.Nil(t, got.RegistryID, "registry_id is omitted for a project that is not a proxy cache")
		require.EqualValues(t, 3, got.RepoCount)
		require.Equal(t, "admin", got.OwnerName)
		require.Equal(t, map[string]string{"public": "true"}, got.Metadata)
		require.NotNil(t, got.CVEAllowlist.Items)
		ct, err := time.Parse(time.RFC3339, got.CreationTime)
		require.NoError(t, err)
		require.WithinDuration(t, time.Now(), ct, time.Hour)
		require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, got.UpdateTime)
	})
}

func TestHeadProject(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		e.createProject(map[string]any{"project_name": "pub", "metadata": map[string]string{"public": "true"}})
		e.createProject(map[string]any{"project_name": "priv"})
		cases := []struct {
			query, user string
			status      int
		}{
			{"?project_name=pub", "", 200},
			{"?project_name=priv", "", 200},
			{"?project_name=nope", "", 404},
			{"", "", 400},
			{"?project_name=pub", "anon", 200},
			{"?project_name=priv", "anon", 401},
			{"?project_name=nope", "anon", 401},
		}
		for _, tc := range cases {
			t.Run(tc.query+" "+tc.user, func(t *testing.T) {
				w := e.must(req{method: http.MethodHead, path: projects + tc.query, user: tc.user}, tc.status)
				require.Zero(t, w.Body.Len(), "HEAD answers carry no body")
			})
		}
	})
}

func TestListProjects(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		for i, name := range []string{"a1", "a2", "a3", "b1", "b2"} {
			md := map[string]string{"public": "false"}
			if i%2 == 0 {
				md["public"] = "true" // a1, a3, b2
			}
			e.createProject(map[string]any{"project_name": name, "metadata": md})
		}
		cases := []struct {
			name, query, user string
			status            int
			names             []string
			total             string
			link              string
		}{
			{"all", "", "", 200, []string{"a1", "a2", "a3", "b1", "b2"}, "5", ""},
			{"first page", "?page=1&page_size=2", "", 200, []string{"a1", "a2"}, "5",
				`</api/v2.0/projects?page=2&page_size=2>; rel="next"`},
			{"middle page", "?page=2&page_size=2", "", 200, []string{"a3", "b1"}, "5",
				`</api/v2.0/projects?page=1&page_size=2>; rel="prev" , </api/v2.0/projects?page=3&page_size=2>; rel="next"`},
			{"last page", "?page=3&page_size=2", "", 200, []string{"b2"}, "5",
				`</api/v2.0/projects?page=2&page_size=2>; rel="prev"`},
			{"past the end", "?page=9&page_size=2", "", 200, []string{}, "5", ""},
			{"name filter keeps the query in links", "?name=a&page_size=1", "", 200, []string{"a1"}, "3",
				`</api/v2.0/projects?name=a&page=2&page_size=1>; rel="next"`},
			{"public only", "?public=true", "", 200, []string{"a1", "a3", "b2"}, "3", ""},
			{"private only", "?public=false", "", 200, []string{"a2", "b1"}, "2", ""},
			{"anonymous sees public", "?page_size=2", "anon", 200, []string{"a1", "a3"}, "3",
				`</api/v2.0/projects?page=2&page_size=2>; rel="next"`},
			{"anonymous second page", "?page=2&page_size=2", "anon", 200, []string{"b2"}, "3",
				`</api/v2.0/projects?page=1&page_size=2>; rel="prev"`},
			{"anonymous asking for private", "?public=false", "anon", 200, []string{}, "0", ""},
			{"page size too large", "?page_size=101", "", 400, nil, "", ""},
			{"page zero", "?page=0", "", 400, nil, "", ""},
			{"page not a number", "?page=x", "", 400, nil, "", ""},
			{"public not boolean", "?public=x", "", 400, nil, "", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				w := e.must(req{method: http.MethodGet, path: projects + tc.query, user: tc.user}, tc.status)
				if tc.status != 200 {
					require.Equal(t, "BAD_REQUEST", errCode(t, w))
					return
				}
				got := decode[[]projectOut](t, w)
				names := []string{}
				for _, p := range got {
					names = append(names, p.Name)
				}
				require.Equal(t, tc.names, names)
				require.Equal(t, tc.total, w.Header().Get("X-Total-Count"))
				require.Equal(t, tc.link, w.Header().Get("Link"))
			})
		}
	})
}

func TestListProjectsManyPublic(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		for i := range 2*scanBatch + 5 {
			e.createProject(map[string]any{"project_name": "p" + itoa(int64(1000+i)), "public": i%2 == 0})
		}
		w := e.must(req{method: http.MethodGet, path: projects + "?page=2&page_size=100", user: "anon"}, http.StatusOK)
		require.Equal(t, itoa(scanBatch+3), w.Header().Get("X-Total-Count"))
		require.Len(t, decode[[]projectOut](t, w), 3)
	})
}

func TestUpdateProject(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		reg := e.createRegistry("hub", "https://registry-1.docker.io", "pw")
		regNum := strings.TrimPrefix(reg, "/api/v2.0/registries/")
		ctx := context.Background()

		cases := []struct {
			name   string
			create string
			path   string // "" = the created project by ID
			header map[string]string
			body   string
			status int
			want   map[string]string
			limit  int64
		}{
			{name: "merge metadata", create: `{"project_name":"m","metadata":{"public":"false","keep":"me"}}`,
				body: `{"metadata":{"proxy_referrer_api":"true","public":"true"}}`, status: 200,
				want: map[string]string{"public": "true", "keep": "me", "proxy_referrer_api": "true"}, limit: -1},
			{name: "by name with header", create: `{"project_name":"byname"}`, path: projects + "/byname",
				header: map[string]string{"X-Is-Resource-Name": "true"},
				body:   `{"metadata":{"proxy_referrer_api":"true"}}`, status: 200,
				want: map[string]string{"public": "false", "proxy_referrer_api": "true"}, limit: -1},
			{name: "legacy public", create: `{"project_name":"lp"}`, body: `{"public":true}`, status: 200,
				want: map[string]string{"public": "true"}, limit: -1},
			{name: "storage limit", create: `{"project_name":"sl"}`, body: `{"storage_limit":1024}`, status: 200,
				want: map[string]string{"public": "false"}, limit: 1024},
			{name: "storage limit 0 keeps", create: `{"project_name":"sl0","storage_limit":5}`, body: `{"storage_limit":0}`, status: 200,
				want: map[string]string{"public": "false"}, limit: 5},
			{name: "name ignored", create: `{"project_name":"fixed"}`, body: `{"project_name":"other"}`, status: 200,
				want: map[string]string{"public": "false"}, limit: -1},
			{name: "same registry_id accepted", create: `{"project_name":"px1","registry_id":` + regNum + `}`,
				body: `{"registry_id":` + regNum + `,"metadata":{"proxy_referrer_cache_seconds":"30"}}`, status: 200,
				want: map[string]string{"public": "false", "proxy_referrer_cache_seconds": "30"}, limit: -1},
			{name: "registry_id cannot change", create: `{"project_name":"px2","registry_id":` + regNum + `}`,
				body: `{"registry_id":12345}`, status: 400},
			{name: "registry_id cannot be added", create: `{"project_name":"plain"}`,
				body: `{"registry_id":` + regNum + `}`, status: 400},
			{name: "invalid metadata", create: `{"project_name":"inv"}`,
				body: `{"metadata":{"proxy_referrer_cache_seconds":"-5"}}`, status: 400},
			{name: "invalid storage limit", create: `{"project_name":"isl"}`, body: `{"storage_limit":-7}`, status: 400},
			{name: "missing project", path: projects + "/999", body: `{}`, status: 404},
			{name: "malformed body", create: `{"project_name":"mb"}`, body: `{"metadata":`, status: 400},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				path := tc.path
				var id int64
				if tc.create != "" {
					loc := e.must(req{method: http.MethodPost, path: projects, body: tc.create}, http.StatusCreated).Header().Get("Location")
					id = idOf(t, loc)
					if path == "" {
						path = loc
					}
				}
				var before *meta.Project
				if id != 0 {
					before, _ = e.store.GetProject(ctx, id)
				}
				e.must(req{method: http.MethodPut, path: path, body: tc.body, header: tc.header}, tc.status)
				if id == 0 {
					return
				}
				after, err := e.store.GetProject(ctx, id)
				require.NoError(t, err)
				if tc.status != 200 {
					require.Equal(t, before.Metadata, after.Metadata, "a refused update changes nothing")
					require.Equal(t, before.RegistryID, after.RegistryID)
					return
				}
				require.Equal(t, tc.want, after.Metadata)
				require.Equal(t, tc.limit, after.StorageLimit)
				require.Equal(t, before.Name, after.Name)
				require.Equal(t, before.RegistryID, after.RegistryID)
			})
		}
	})
}

func TestDeleteProject(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		empty := e.createProject(map[string]any{"project_name": "empty"})
		full := e.createProject(map[string]any{"project_name": "full"})
		e.addRepo(idOf(t, full))

		w := e.must(req{method: http.MethodDelete, path: full}, http.StatusPreconditionFailed)
		require.Equal(t, "PRECONDITION", errCode(t, w))
		e.must(req{method: http.MethodGet, path: full}, http.StatusOK)

		e.must(req{method: http.MethodDelete, path: projects + "/empty", header: map[string]string{"X-Is-Resource-Name": "true"}}, http.StatusOK)
		e.must(req{method: http.MethodGet, path: empty}, http.StatusNotFound)
		w = e.must(req{method: http.MethodDelete, path: empty}, http.StatusNotFound)
		require.Equal(t, "NOT_FOUND", errCode(t, w))
	})
}

// racingCounter reports no repositories although the store refuses the delete, as when a repository
// appears between the count and the delete.
type racingStore struct{ *fakeStore }

func (racingStore) CountRepositories(context.Context, int64) (int64, error) { return 0, nil }

func TestDeleteProjectRace(t *testing.T) {
	f := newFakeStore()
	e := newEnvWith(t, racingStore{f})
	loc := e.createProject(map[string]any{"project_name": "p"})
	f.repos[idOf(t, loc)] = 1
	w := e.must(req{method: http.MethodDelete, path: loc}, http.StatusPreconditionFailed)
	require.Equal(t, "PRECONDITION", errCode(t, w))
}
