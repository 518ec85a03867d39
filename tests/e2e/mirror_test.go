package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
)

// setMetadata sets one metadata pair of a project with PUT /api/v2.0/projects/<name>/metadatas/<key>.
func (s *server) setMetadata(t *testing.T, project, key, value string) httpResult {
	t.Helper()
	body := mustMarshal(t, map[string]string{key: value})
	return s.do(t, http.MethodPut, "/api/v2.0/projects/"+project+"/metadatas/"+key, s.admin(),
		http.Header{"Content-Type": {"application/json"}}, body)
}

// errorCode returns the first OCI error code of a response body.
func errorCode(t *testing.T, res httpResult) string {
	t.Helper()
	var body struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(res.Body, &body), "error body:\n%s", res)
	require.NotEmpty(t, body.Errors, "error body:\n%s", res)
	return body.Errors[0].Code
}

// TestMirrorRouting drives the mirror forms over HTTP, anonymously, against public proxy-cache projects:
// ?ns= for two upstreams (by registry host and by mirror_namespaces), the per-project form containerd
// sends with override_path, blobs, tags and referrers through ns, unknown namespaces, ns winning over a
// local project, the default project, and the whole pull again after the upstream stopped.
func TestMirrorRouting(t *testing.T) {
	t.Parallel()
	upA := ggcrUpstream(t)
	upB := distributionUpstream(t)
	imgA := newRuntimeImage(t, "a", 0)
	imgA.push(pusher{t: t, base: upA.URL, auth: upA.Auth}, "team/app", "v1")
	sig := artifactManifest(t, "application/vnd.example.sig", nil, &ocispec.Descriptor{
		MediaType: imgA.Children["amd64"].MediaType, Digest: imgA.Children["amd64"].Digest, Size: imgA.Children["amd64"].Size}, nil)
	pa := pusher{t: t, base: upA.URL, auth: upA.Auth}
	pa.blob("team/app", "", emptyJSON)
	sigDesc := pa.manifest("team/app", "", ocispec.MediaTypeImageManifest, sig)
	for _, tag := range []string{"v2", "v3"} {
		pa.manifest("team/app", tag, ocispec.MediaTypeImageIndex, imgA.bodies[imgA.Index.Digest])
	}
	imgB := newRuntimeImage(t, "b", 0)
	imgB.push(pusher{t: t, base: upB.URL, auth: upB.Auth}, "library/hello", "latest")

	srv := startServer(t, serverConfig{args: []string{"--mirror-default-project", "hub"}})
	srv.createProxyProject(t, "dist", srv.createTypedRegistry(t, "a", "docker-registry", upA.URL))
	require.Equal(t, http.StatusBadRequest, srv.setMetadata(t, "dist", "mirror_namespaces", "https://reg-a.test/x").Status)
	res := srv.setMetadata(t, "dist", "mirror_namespaces", "Reg-A.test")
	require.Equal(t, http.StatusOK, res.Status, "set mirror_namespaces:\n%s", res)
	srv.createProxyProject(t, "hub", srv.createTypedRegistry(t, "b", "docker-hub", upB.URL))
	srv.createProject(t, "library", true) // a local project named like Docker Hub's library/
	local := newRuntimeImage(t, "local", 0)
	local.push(pusher{t: t, base: srv.URL, auth: srv.admin()}, "library/hello", "latest")

	nsA := "?ns=" + upA.Host
	require.Equal(t, upA.Host, imgA.requirePull(t, srv, "/v2/team/app", nsA, "v1", "amd64"), "ns by registry host")
	require.Equal(t, "reg-a.test", imgA.requirePull(t, srv, "/v2/team/app", "?ns=reg-a.test", "v1", "arm64"), "ns by mirror_namespaces")
	require.Equal(t, upA.Host, imgA.requirePull(t, srv, "/v2/dist/team/app", nsA, "v1", "amd64"), "per-project form (override_path)")
	require.Empty(t, imgA.requirePull(t, srv, "/v2/dist/team/app", "", "v1", "amd64"), "the project form without ns")

	// Tags lists name the repository as asked, and their Links come back in the same form (ns kept).
	require.Equal(t, []string{"v1", "v2", "v3"}, walkTags(t, srv, "/v2/team/app/tags/list?n=2&ns="+upA.Host, "team/app", upA.Host))
	require.Equal(t, []string{"v1", "v2", "v3"}, walkTags(t, srv, "/v2/dist/team/app/tags/list?n=2&ns="+upA.Host, "dist/team/app", upA.Host))
	refs := getReferrers(t, srv, "/v2/team/app/referrers/"+imgA.Children["amd64"].Digest.String()+nsA)
	require.Equal(t, upA.Host, refs.res.Header.Get("OCI-Namespace"))
	require.Len(t, refs.index.Manifests, 1, "referrers through ns:\n%s", refs.res)
	require.Equal(t, sigDesc.Digest, refs.index.Manifests[0].Digest)

	// Namespaces nobody claims are NAME_UNKNOWN at once; pushes through ns follow the project's rules.
	for _, path := range []string{"/v2/team/app/manifests/v1?ns=unknown.example", "/v2/nginx/manifests/latest?ns=unknown.example"} {
		res := srv.do(t, http.MethodGet, path, nil, nil, nil)
		require.Equal(t, http.StatusNotFound, res.Status, "%s:\n%s", path, res)
		require.Equal(t, "NAME_UNKNOWN", errorCode(t, res))
	}
	res = srv.do(t, http.MethodPut, "/v2/team/app/manifests/v2"+nsA, nil, http.Header{"Content-Type": {ocispec.MediaTypeImageIndex}}, imgA.bodies[imgA.Index.Digest])
	require.Equal(t, http.StatusUnauthorized, res.Status, "anonymous push through ns:\n%s", res)

	// ns=docker.io wins over the local project "library"; without ns the local project serves.
	require.Equal(t, "docker.io", imgB.requirePull(t, srv, "/v2/library/hello", "?ns=docker.io", "latest", "amd64"))
	require.Equal(t, "docker.io", imgB.requirePull(t, srv, "/v2/hello", "?ns=docker.io", "latest", "amd64"), "Docker Hub's library/ rule")
	local.requirePull(t, srv, "/v2/library/hello", "", "latest", "amd64")
	// The default project serves names whose first segment is no project.
	imgA2 := newRuntimeImage(t, "b2", 0)
	imgA2.push(pusher{t: t, base: upB.URL, auth: upB.Auth}, "bitnami/tool", "1.0")
	require.Empty(t, imgA2.requirePull(t, srv, "/v2/bitnami/tool", "", "1.0", "arm64"))
	imgA2.push(pusher{t: t, base: upB.URL, auth: upB.Auth}, "bitnami/tool", "1.1")
	require.Equal(t, []string{"1.0", "1.1"}, walkTags(t, srv, "/v2/bitnami/tool/tags/list?n=1", "bitnami/tool", ""))
	anon := newClients(t, srv, "crane")
	require.Equal(t, []string{"1.0", "1.1"}, strings.Fields(anon.must("crane", "ls", srv.Host+"/bitnami/tool")), "crane ls through the default project")
	require.Equal(t, []string{"1.0", "1.1"}, strings.Fields(anon.must("crane", "ls", srv.Host+"/hub/bitnami/tool")), "crane ls, project form")

	// Upstream stopped: the same pulls are served from what Berth kept (index by tag included).
	upA.stop(t)
	imgA.requirePull(t, srv, "/v2/team/app", nsA, "v1", "amd64")
	imgA.requirePull(t, srv, "/v2/team/app", "?ns=reg-a.test", "v1", "arm64")
}

// walkTags follows a tags list's Link headers from path, anonymously, and returns every tag. Each page
// must name the repository name and each Link must keep the path's form: name and ns.
func walkTags(t *testing.T, srv *server, path, name, ns string) []string {
	t.Helper()
	var all []string
	for pages := 0; path != ""; pages++ {
		require.Less(t, pages, 10, "tags pagination does not end")
		res := srv.do(t, http.MethodGet, path, nil, nil, nil)
		require.Equal(t, http.StatusOK, res.Status, "GET %s:\n%s", path, res)
		require.Equal(t, ns, res.Header.Get("OCI-Namespace"))
		var l struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		require.NoError(t, json.Unmarshal(res.Body, &l), "%s", res)
		require.Equal(t, name, l.Name, "the name as asked: %s", path)
		all = append(all, l.Tags...)
		path = ""
		if link := res.Header.Get("Link"); link != "" {
			u, err := url.Parse(strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`))
			require.NoError(t, err, "Link %q", link)
			require.Equal(t, "/v2/"+name+"/tags/list", u.Path, "Link %q", link)
			require.Equal(t, ns, u.Query().Get("ns"), "Link %q", link)
			path = u.String()
		}
	}
	return all
}
