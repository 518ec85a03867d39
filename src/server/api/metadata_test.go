package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProjectMetadata(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newEnv envMaker) {
		e := newEnv(t)
		loc := e.createProject(map[string]any{"project_name": "md", "metadata": map[string]string{"custom": "x"}})
		id := idOf(t, loc)
		base := loc + "/metadatas"
		byName := projects + "/md/metadatas"
		nameHeader := map[string]string{"X-Is-Resource-Name": "true"}

		steps := []struct {
			name   string
			req    req
			status int
			resp   map[string]string // expected JSON body of a GET
			stored map[string]string // expected metadata afterwards
		}{
			{name: "list", req: req{method: "GET", path: base}, status: 200,
				resp: map[string]string{"public": "false", "custom": "x"}},
			{name: "list, Harbor's trailing slash", req: req{method: "GET", path: base + "/"}, status: 200,
				resp: map[string]string{"public": "false", "custom": "x"}},
			{name: "add, Harbor's trailing slash, reaches the handler", req: req{method: "POST", path: base + "/", body: `{}`}, status: 400},
			{name: "get one", req: req{method: "GET", path: base + "/custom"}, status: 200, resp: map[string]string{"custom": "x"}},
			{name: "get absent is empty", req: req{method: "GET", path: base + "/nope"}, status: 200, resp: map[string]string{}},
			{name: "add", req: req{method: "POST", path: base, body: `{"proxy_referrer_api":"true"}`}, status: 200,
				stored: map[string]string{"public": "false", "custom": "x", "proxy_referrer_api": "true"}},
			{name: "add by name", req: req{method: "POST", path: byName, header: nameHeader, body: `{"proxy_referrer_cache_seconds":"120"}`}, status: 200,
				stored: map[string]string{"public": "false", "custom": "x", "proxy_referrer_api": "true", "proxy_referrer_cache_seconds": "120"}},
			{name: "add invalid", req: req{method: "POST", path: base, body: `{"proxy_referrer_api":"sometimes"}`}, status: 400},
			{name: "add empty", req: req{method: "POST", path: base, body: `{}`}, status: 400},
			{name: "add malformed", req: req{method: "POST", path: base, body: `{"a":1}`}, status: 400},
			{name: "update", req: req{method: "PUT", path: base + "/proxy_referrer_api", body: `{"proxy_referrer_api":"false"}`}, status: 200,
				stored: map[string]string{"public": "false", "custom": "x", "proxy_referrer_api": "false", "proxy_referrer_cache_seconds": "120"}},
			{name: "update only the named key", req: req{method: "PUT", path: base + "/public", body: `{"public":"true","custom":"ignored"}`}, status: 200,
				stored: map[string]string{"public": "true", "custom": "x", "proxy_referrer_api": "false", "proxy_referrer_cache_seconds": "120"}},
			{name: "update without the key", req: req{method: "PUT", path: base + "/public", body: `{"other":"true"}`}, status: 400},
			{name: "update invalid", req: req{method: "PUT", path: base + "/proxy_referrer_cache_seconds", body: `{"proxy_referrer_cache_seconds":"x"}`}, status: 400},
			{name: "update out of range", req: req{method: "PUT", path: base + "/proxy_referrer_cache_seconds", body: `{"proxy_referrer_cache_seconds":"9300000000"}`}, status: 400},
			{name: "delete", req: req{method: "DELETE", path: base + "/custom"}, status: 200,
				stored: map[string]string{"public": "true", "proxy_referrer_api": "false", "proxy_referrer_cache_seconds": "120"}},
			{name: "delete absent", req: req{method: "DELETE", path: base + "/custom"}, status: 200,
				stored: map[string]string{"public": "true", "proxy_referrer_api": "false", "proxy_referrer_cache_seconds": "120"}},
			{name: "missing project", req: req{method: "GET", path: projects + "/999/metadatas"}, status: 404},
			{name: "list after changes", req: req{method: "GET", path: base}, status: 200,
				resp: map[string]string{"public": "true", "proxy_referrer_api": "false", "proxy_referrer_cache_seconds": "120"}},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				before, err := e.store.GetProject(context.Background(), id)
				require.NoError(t, err)
				w := e.must(st.req, st.status)
				after, err := e.store.GetProject(context.Background(), id)
				require.NoError(t, err)
				switch {
				case st.status != http.StatusOK:
					require.Equal(t, before.Metadata, after.Metadata)
				case st.resp != nil:
					require.Equal(t, st.resp, decode[map[string]string](t, w))
				case st.stored != nil:
					require.Equal(t, st.stored, after.Metadata)
				}
			})
		}
		w := e.must(req{method: http.MethodGet, path: base, user: "anon"}, http.StatusUnauthorized)
		require.Equal(t, "UNAUTHORIZED", errCode(t, w))
	})
}
