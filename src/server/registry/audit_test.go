package registry_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
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

// bearerRobot is a BearerVerifier standing for the token service: token "push-only" is a robot that
// may push and pull in project "private" but not push referrers.
type bearerRobot struct{}

func (bearerRobot) VerifyBearer(_ context.Context, token string) (auth.Principal, error) {
	if token != "push-only" {
		return auth.Principal{}, errcode.ErrUnauthorized.WithMessage("bad token")
	}
	return auth.Principal{Name: "robot$ci", Robot: true, Limit: grant(func(p *meta.Project, act auth.Action) bool {
		return p != nil && p.Name == "private" && (act == auth.Pull || act == auth.Push)
	})}, nil
}

type grant func(*meta.Project, auth.Action) bool

func (g grant) Allows(p *meta.Project, _ string, act auth.Action) bool { return g(p, act) }

// TestReferrerPushIsItsOwnPermission: a manifest with a subject needs auth.ReferrerPush besides
// auth.Push, and a tag delete auth.TagDelete; a principal limited to push and pull (here a robot behind
// a bearer token) pushes images but neither referrers nor deletes, and only in its project.
func TestReferrerPushIsItsOwnPermission(t *testing.T) {
	e := newEnv(t, envOpts{auth: []auth.Option{auth.WithBearer(bearerRobot{})}})
	bearer := map[string]string{"Authorization": "Bearer push-only"}
	subject := e.pushImage("private/app", "v1", imageOpts{seed: "subject"})

	body := e.imageManifest("private/app", imageOpts{seed: "plain"})
	r := e.do(req{method: http.MethodPut, path: "/v2/private/app/manifests/v2", body: body, as: asAnon,
		header: map[string]string{"Authorization": "Bearer push-only", "Content-Type": ocispec.MediaTypeImageManifest}})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)

	ref := e.imageManifest("private/app", imageOpts{seed: "sig", artifactType: "application/example.sig", subject: &subject})
	r = e.do(req{method: http.MethodPut, path: "/v2/private/app/manifests/" + digest.FromBytes(ref).String(), body: ref, as: asAnon,
		header: map[string]string{"Authorization": "Bearer push-only", "Content-Type": ocispec.MediaTypeImageManifest}})
	requireError(t, r, http.StatusForbidden, "DENIED")

	r = e.do(req{method: http.MethodDelete, path: "/v2/private/app/manifests/v2", as: asAnon, header: bearer})
	requireError(t, r, http.StatusForbidden, "DENIED")
	r = e.do(req{method: http.MethodGet, path: "/v2/other/app/tags/list", as: asAnon, header: bearer})
	requireError(t, r, http.StatusForbidden, "DENIED")
	r = e.do(req{method: http.MethodGet, path: "/v2/private/app/manifests/v2", as: asAnon,
		header: map[string]string{"Authorization": "Bearer forged"}})
	requireError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
}
