package registry_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/registry"
)

// recorder is an auth.AuditSink keeping entries in memory.
type recorder struct {
	mu      sync.Mutex
	entries []string
}

func (r *recorder) Record(e meta.AuditEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e.Operation+" "+e.ResourceType+" "+e.Resource+" "+e.Username)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.entries
	r.entries = nil
	return out
}

// TestAuditRecords: pushes, tag and manifest deletes are recorded with the caller; pulls only with
// AuditPulls; refused requests record nothing.
func TestAuditRecords(t *testing.T) {
	for _, pulls := range []bool{false, true} {
		rec := &recorder{}
		e := newEnv(t, envOpts{handler: registry.Options{Audit: rec, AuditPulls: pulls}})
		img := e.pushImage("private/app", "v1", imageOpts{seed: "a"})
		d := img.digest.String()
		require.Equal(t, []string{"create artifact private/app@" + d + " admin", "create tag private/app:v1 admin"}, rec.take())

		r := e.do(req{method: http.MethodGet, path: "/v2/private/app/manifests/v1"})
		require.Equal(t, http.StatusOK, r.status)
		r = e.do(req{method: http.MethodHead, path: "/v2/private/app/manifests/v1"})
		require.Equal(t, http.StatusOK, r.status)
		if pulls {
			require.Equal(t, []string{"pull artifact private/app@" + d + " admin"}, rec.take(), "GET is a pull, HEAD is not")
		} else {
			require.Empty(t, rec.take())
		}

		r = e.do(req{method: http.MethodDelete, path: "/v2/private/app/manifests/v1", as: asAnon})
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Empty(t, rec.take(), "a refused request records nothing")
		r = e.do(req{method: http.MethodDelete, path: "/v2/private/app/manifests/v1"})
		require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
		r = e.do(req{method: http.MethodDelete, path: "/v2/private/app/manifests/" + d})
		require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
		require.Equal(t, []string{"delete tag private/app:v1 admin", "delete artifact private/app@" + d + " admin"}, rec.take())
	}
}
