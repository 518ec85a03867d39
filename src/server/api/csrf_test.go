package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStateChangesNeedJSON sends each state-changing request a foreign page could make from the admin's
// browser (text/plain, form and multipart bodies, no Content-Type) and requires 415 UNSUPPORTED_MEDIA_TYPE
// with nothing changed; the same request as application/json succeeds.
func TestStateChangesNeedJSON(t *testing.T) {
	e := newEnv(t)
	loc := e.createProject(map[string]any{"project_name": "private", "metadata": map[string]string{"public": "false"}})
	id := idOf(t, loc)
	reg := e.createRegistry("up", "https://up.example", "s3cret")
	foreign := []struct{ name, contentType string }{
		{"text/plain", "text/plain"},
		{"text/plain charset", "text/plain; charset=utf-8"},
		{"form", "application/x-www-form-urlencoded"},
		{"multipart", "multipart/form-data; boundary=x"},
		{"none", ""},
		{"json look-alike", "application/json-patch+json"},
		{"malformed", "application/json; ="},
	}
	endpoints := []struct {
		name, method, path, body string
		ok                       int
	}{
		{"create project", http.MethodPost, projects, `{"project_name":"made"}`, http.StatusCreated},
		{"update project", http.MethodPut, loc, `{"metadata":{"public":"true"}}`, http.StatusOK},
		{"add metadata", http.MethodPost, loc + "/metadatas", `{"public":"true"}`, http.StatusOK},
		{"update metadata", http.MethodPut, loc + "/metadatas/public", `{"public":"true"}`, http.StatusOK},
		{"delete metadata with a body", http.MethodDelete, loc + "/metadatas/public", `{}`, http.StatusOK},
		{"create registry", http.MethodPost, registries, `{"name":"r2","type":"docker-registry","url":"https://r2.example"}`, http.StatusCreated},
		{"update registry", http.MethodPut, reg, `{"description":"changed"}`, http.StatusOK},
		{"ping registry", http.MethodPost, registries + "/ping", `{"id":` + itoa(idOf(t, reg)) + `}`, http.StatusOK},
	}
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			for _, f := range foreign {
				calls := len(e.pinger.Calls())
				w := e.must(req{method: ep.method, path: ep.path, body: ep.body, header: map[string]string{"Content-Type": f.contentType}},
					http.StatusUnsupportedMediaType)
				require.Equal(t, "UNSUPPORTED_MEDIA_TYPE", errCode(t, w), f.name)
				require.Equal(t, calls, len(e.pinger.Calls()), "%s: no upstream was contacted", f.name)
				p, err := e.store.GetProject(context.Background(), id)
				require.NoError(t, err)
				require.Equal(t, "false", p.Metadata["public"], "%s: the project stayed private", f.name)
				_, err = e.store.GetProjectByName(context.Background(), "made")
				require.Error(t, err, "%s: no project was created", f.name)
				_, total, err := e.store.ListRegistries(context.Background(), "r2", 0, 10)
				require.NoError(t, err)
				require.Zero(t, total, "%s: no registry was created", f.name)
			}
		})
	}
	// The same requests as JSON go through (after every refusal above, so the state checks held).
	for _, ep := range endpoints {
		e.must(req{method: ep.method, path: ep.path, body: ep.body, header: map[string]string{"Content-Type": "application/json; charset=utf-8"}}, ep.ok)
	}
	_, err := e.store.GetProjectByName(context.Background(), "made")
	require.NoError(t, err, "the JSON create went through")

	t.Run("DELETE without a body needs no Content-Type", func(t *testing.T) {
		e.must(req{method: http.MethodDelete, path: loc + "/metadatas/public"}, http.StatusOK)
	})
	t.Run("GET is not affected", func(t *testing.T) {
		e.must(req{method: http.MethodGet, path: loc, header: map[string]string{"Content-Type": "text/plain"}}, http.StatusOK)
	})
}
