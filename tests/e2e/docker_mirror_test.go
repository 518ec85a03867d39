package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
)

// dockerAccept is the Accept list Docker's daemon (moby's distribution client) sends for a manifest:
// one header line per registered manifest media type.
var dockerAccept = []string{
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
	"application/json",
}

const dockerUserAgent = "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0 os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.7 \\(linux\\))"

// errNoBasicAuthCredentials is what Docker's authorizer returns when the ping challenged with Basic and
// Docker holds no credentials for the mirror (distribution's registry/client/auth basicHandler): no
// further request is sent, and Docker falls back to Docker Hub.
var errNoBasicAuthCredentials = errors.New("no basic auth credentials")

// dockerMirrorPull does what Docker's daemon does with a registry-mirrors entry for docker.io/library/
// <name>:<tag>, without credentials for the mirror: GET /v2/, then the manifest by tag with Docker's
// Accept headers, the linux/amd64 manifest by digest when it is a list, then the config and layers. It
// returns the digest of each fetched object.
func dockerMirrorPull(t *testing.T, c *http.Client, base, name, tag string) ([]digest.Digest, error) {
	t.Helper()
	var bearer string
	get := func(path string, accept []string) (int, http.Header, []byte, error) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+path, nil)
		require.NoError(t, err)
		req.Header.Set("User-Agent", dockerUserAgent)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		for _, a := range accept {
			req.Header.Add("Accept", a)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b, err
	}
	status, hdr, _, err := get("/v2/", nil)
	require.NoError(t, err)
	challenge := hdr.Get("WWW-Authenticate")
	switch {
	case status == http.StatusUnauthorized && strings.HasPrefix(strings.ToLower(challenge), "basic"):
		return nil, errNoBasicAuthCredentials
	case status == http.StatusUnauthorized && strings.HasPrefix(challenge, "Bearer "):
		// Docker asks the token service for an anonymous pull token and carries on with it.
		if bearer, err = anonymousToken(c, challenge, "repository:library/"+name+":pull"); err != nil {
			return nil, err
		}
	case status != http.StatusOK:
		return nil, fmt.Errorf("ping: %d", status)
	}
	var fetched []digest.Digest
	manifest := func(ref string) (ocispec.Manifest, ocispec.Index, error) {
		status, hdr, b, err := get("/v2/library/"+name+"/manifests/"+ref, dockerAccept)
		if err != nil {
			return ocispec.Manifest{}, ocispec.Index{}, fmt.Errorf("manifest %s: %w", ref, err)
		}
		if status != http.StatusOK {
			return ocispec.Manifest{}, ocispec.Index{}, fmt.Errorf("manifest %s: status %d: %s", ref, status, b)
		}
		d := digest.FromBytes(b)
		if hdr.Get("Docker-Content-Digest") != d.String() {
			return ocispec.Manifest{}, ocispec.Index{}, fmt.Errorf("manifest %s: Docker-Content-Digest %q, body %s", ref, hdr.Get("Docker-Content-Digest"), d)
		}
		fetched = append(fetched, d)
		var m ocispec.Manifest
		var idx ocispec.Index
		require.NoError(t, json.Unmarshal(b, &m))
		require.NoError(t, json.Unmarshal(b, &idx))
		return m, idx, nil
	}
	m, idx, err := manifest(tag)
	if err != nil {
		return fetched, err
	}
	if len(idx.Manifests) > 0 {
		for _, child := range idx.Manifests {
			if child.Platform != nil && child.Platform.OS == "linux" && child.Platform.Architecture == "amd64" {
				if m, _, err = manifest(child.Digest.String()); err != nil {
					return fetched, err
				}
			}
		}
	}
	for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		status, _, b, err := get("/v2/library/"+name+"/blobs/"+d.Digest.String(), nil)
		if err != nil {
			return fetched, fmt.Errorf("blob %s: %w", d.Digest, err)
		}
		if status != http.StatusOK || digest.FromBytes(b) != d.Digest {
			return fetched, fmt.Errorf("blob %s: status %d, %d bytes", d.Digest, status, len(b))
		}
		fetched = append(fetched, d.Digest)
	}
	return fetched, nil
}

// TestDockerRegistryMirror speaks exactly what Docker's daemon sends to a registry-mirrors entry, against
// the default project (a docker-hub proxy-cache project): the anonymous ping must not challenge, and
// library/<name> by tag must come through with every object verified. A Berth without a default project
// challenges the ping; Docker fetches an anonymous token, which grants nothing on library/<name> (no
// project serves it): the same pull stops at the manifest with 401, and Docker falls back to Docker Hub.
func TestDockerRegistryMirror(t *testing.T) {
	t.Parallel()
	up := distributionUpstream(t)
	img := newRuntimeImage(t, "docker", 0)
	img.push(pusher{t: t, base: up.URL, auth: up.Auth}, "library/hello", "latest")

	srv := startServer(t, serverConfig{args: []string{"--mirror-default-project", "dockerhub"}})
	srv.createProxyProject(t, "dockerhub", srv.createTypedRegistry(t, "hub", "docker-hub", up.URL))
	got, err := dockerMirrorPull(t, srv.client, srv.URL, "hello", "latest")
	require.NoError(t, err)
	require.Equal(t, []digest.Digest{img.Index.Digest, img.Children["amd64"].Digest, img.Configs["amd64"].Digest, img.Layers["amd64"].Digest}, got)

	plain := startServer(t, serverConfig{})
	plain.createProxyProject(t, "dockerhub", plain.createTypedRegistry(t, "hub", "docker-hub", up.URL))
	_, err = dockerMirrorPull(t, plain.client, plain.URL, "hello", "latest")
	require.ErrorContains(t, err, "status 401")
}

// anonymousToken does what Docker's token handler does without credentials: GET the challenge's realm
// with its service and the scope, and return the token.
func anonymousToken(c *http.Client, challenge, scope string) (string, error) {
	params := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(challenge, "Bearer "), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			params[k] = strings.Trim(v, `"`)
		}
	}
	u, err := url.Parse(params["realm"])
	if err != nil || params["realm"] == "" {
		return "", fmt.Errorf("challenge %q: no realm", challenge)
	}
	u.RawQuery = url.Values{"service": {params["service"]}, "scope": {scope}}.Encode()
	resp, err := c.Get(u.String())
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.Token == "" {
		return "", fmt.Errorf("anonymous token: status %d: %w", resp.StatusCode, err)
	}
	return tok.Token, nil
}
