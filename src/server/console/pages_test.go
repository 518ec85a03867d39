package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// TestSearchDeleteAndRegistryEdit: the projects search, deleting an artifact (admin, with the token),
// editing a registry without re-entering its secret, and "Test connection" with its outcome shown.
func TestSearchDeleteAndRegistryEdit(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	pid := e.publicProjects(t, "lib", "tools")[0]
	d := digest.FromString("to delete").String()
	require.NoError(t, e.store.PutArtifact(ctx, pid, "lib/app", &meta.Artifact{Digest: d, MediaType: ocispec.MediaTypeImageManifest, Size: 5}, "v1"))

	b := e.browser()
	_, body, _ := b.get("/projects?q=too")
	require.Contains(t, body, `href="/projects/tools"`)
	require.NotContains(t, body, `href="/projects/lib"`)

	status, _, _ := b.post("/projects/lib/artifact/delete", url.Values{"repo": {"app"}, "digest": {d}})
	require.Equal(t, http.StatusUnauthorized, status, "anonymous")
	csrf := b.login()
	status, _, _ = b.post("/projects/lib/artifact/delete", url.Values{"repo": {"app"}, "digest": {d}})
	require.Equal(t, http.StatusForbidden, status, "without the token")
	status, _, h := b.post("/projects/lib/artifact/delete", url.Values{"repo": {"app"}, "digest": {d}, "csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Equal(t, "/projects/lib/repository?name=app", h.Get("Location"))
	_, err := e.store.GetArtifact(ctx, "lib/app", d)
	require.ErrorIs(t, err, meta.ErrNotFound)

	status, _, _ = b.post("/registries", url.Values{"csrf": {csrf}, "name": {"hub"}, "type": {"docker-registry"},
		"url": {"https://registry.example"}, "access_key": {"robot"}, "access_secret": {"first-secret"}})
	require.Equal(t, http.StatusSeeOther, status)
	regs, _, err := e.store.ListRegistries(ctx, "", 0, 0)
	require.NoError(t, err)
	id := regs[0].ID
	status, _, _ = b.post(fmt.Sprintf("/registries/%d", id), url.Values{"csrf": {csrf}, "name": {"hub"}, "type": {"docker-registry"},
		"url": {"https://mirror.example"}, "access_key": {"robot"}})
	require.Equal(t, http.StatusSeeOther, status)
	r, err := e.store.GetRegistry(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "https://mirror.example", r.URL)
	require.Equal(t, "first-secret", e.pings[len(e.pings)-1].AccessSecret, "a blank secret keeps the stored one")

	n := len(e.pings)
	e.pingErr = errors.New("connection refused")
	status, _, h = b.post(fmt.Sprintf("/registries/%d/ping", id), url.Values{"csrf": {csrf}, "next": {fmt.Sprintf("/registries/%d", id)}})
	require.Equal(t, http.StatusSeeOther, status)
	require.Len(t, e.pings, n+1)
	_, body, _ = b.get(h.Get("Location"))
	require.Contains(t, body, "failed")
	require.Contains(t, body, "connection refused")
	require.NotContains(t, body, "first-secret")
}

var (
	fieldRE = regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idRE    = regexp.MustCompile(`\bid="([^"]+)"`)
)

// TestEveryFieldIsLabelled renders every page as the admin and checks that each visible form field has
// a label: a <label for=its id>, an enclosing <label>, or an aria-label, as screen readers need.
func TestEveryFieldIsLabelled(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	regID, err := e.store.CreateRegistry(ctx, &meta.Registry{Name: "hub", Type: "docker-registry", URL: "https://registry.example"})
	require.NoError(t, err)
	pid, err := e.store.CreateProject(ctx, &meta.Project{Name: "cache", RegistryID: regID, Metadata: map[string]string{meta.MetaPublic: "true"}})
	require.NoError(t, err)
	d := digest.FromString("m").String()
	require.NoError(t, e.store.PutArtifact(ctx, pid, "cache/app", &meta.Artifact{Digest: d, MediaType: ocispec.MediaTypeImageManifest, Size: 5}, "v1"))
	b := e.browser()
	_, login, _ := b.get("/login")
	b.login()
	pages := map[string]string{"/login": login}
	for _, p := range []string{"/projects", "/projects/cache", "/projects/cache/repository?name=app",
		"/projects/cache/artifact?repo=app&digest=" + url.QueryEscape(d), "/registries", fmt.Sprintf("/registries/%d", regID), "/cache"} {
		status, body, _ := b.get(p)
		require.Equal(t, http.StatusOK, status, p)
		pages[p] = body
	}
	for p, body := range pages {
		require.Contains(t, body, `<html lang="en">`, p)
		require.Contains(t, body, `<main id="main"`, p)
		for _, f := range fieldRE.FindAllString(body, -1) {
			if regexp.MustCompile(`type="(hidden|submit|button)"`).MatchString(f) || regexp.MustCompile(`\baria-label=`).MatchString(f) {
				continue
			}
			m := idRE.FindStringSubmatch(f)
			labelled := m != nil && regexp.MustCompile(`<label[^>]*\bfor="`+regexp.QuoteMeta(m[1])+`"`).MatchString(body)
			enclosed := regexp.MustCompile(`<label[^>]*>[^<]*` + regexp.QuoteMeta(f)).MatchString(body)
			require.True(t, labelled || enclosed, "%s: field without a label: %s", p, f)
		}
	}
}
