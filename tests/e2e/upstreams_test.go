package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

// TestMain keeps the in-process CNCF distribution registries (registrytest) from exporting traces and
// from logging every request.
func TestMain(m *testing.M) {
	_ = os.Setenv("OTEL_TRACES_EXPORTER", "none")
	logrus.SetOutput(io.Discard) // their request logs would bury the test's own output
	os.Exit(m.Run())
}

// upstreamRepo is the repository every proxy test pushes to upstream; on a Berth upstream "lib" is a
// public project. Through a proxy-cache project "cache" it is "cache/lib/app".
const upstreamRepo = "lib/app"

// upstream is a registry a proxy-cache project mirrors, as the tests see it.
type upstream struct {
	Name string
	Host string     // host:port that clients push to and references name
	URL  string     // base URL given to Berth's registries API
	Auth *basicAuth // credentials given to Berth's registries API (nil: anonymous)

	berth *server              // the Berth upstream, else nil
	reg   *registrytest.Server // the in-process upstream, else nil
}

// stop makes the upstream unreachable (the process exits or the listener closes).
func (u *upstream) stop(t *testing.T) {
	t.Helper()
	if u.berth != nil {
		u.berth.stop(t)
		return
	}
	u.reg.Close()
}

// clients returns client runners for pushing to the upstream; on a Berth upstream each of oras, crane
// and notation among tools is logged in as the admin (oras first: notation reuses its credentials).
func (u *upstream) clients(t *testing.T, tools ...string) *clients {
	t.Helper()
	c := newClients(t, u.berth, tools...)
	if u.berth == nil {
		return c
	}
	if slices.Contains(tools, "oras") {
		c.loginOras()
	}
	if slices.Contains(tools, "crane") {
		c.loginCrane()
	}
	if slices.Contains(tools, "notation") {
		c.loginNotation()
	}
	return c
}

// berthUpstream starts a second Berth that paginates referrers at 10 per page (the largest n it honours
// is 10 too), with a public project "lib".
func berthUpstream(t *testing.T) *upstream {
	t.Helper()
	s := startServer(t, serverConfig{args: []string{"--referrers-page-size", "10", "--referrers-max-page-size", "10"}})
	s.createProject(t, "lib", true)
	return &upstream{Name: "berth", Host: s.Host, URL: s.URL, Auth: s.admin(), berth: s}
}

// ggcrUpstream starts go-containerregistry's registry in-process with its referrers API on (it ignores
// artifactType and reports config.mediaType as each referrer's artifactType).
func ggcrUpstream(t *testing.T, opts ...registrytest.Option) *upstream {
	t.Helper()
	r := registrytest.NewGGCR(t, true, opts...)
	return &upstream{Name: "ggcr", Host: r.Host, URL: r.URL, Auth: regAuth(r), reg: r}
}

// distributionUpstream starts CNCF distribution v3 in-process (no referrers API: the tag schema).
func distributionUpstream(t *testing.T, opts ...registrytest.Option) *upstream {
	t.Helper()
	r := registrytest.NewDistribution(t, opts...)
	return &upstream{Name: "distribution", Host: r.Host, URL: r.URL, Auth: regAuth(r), reg: r}
}

func regAuth(r *registrytest.Server) *basicAuth {
	if r.Username == "" {
		return nil
	}
	return &basicAuth{r.Username, r.Password}
}

// setProxyReferrerAPI switches the project's Proxy Referrer API with PUT /api/v2.0/projects/<name>.
func (s *server) setProxyReferrerAPI(t *testing.T, project string, on bool) {
	t.Helper()
	body := fmt.Sprintf(`{"metadata":{"proxy_referrer_api":%q}}`, strconv.FormatBool(on))
	res := s.do(t, http.MethodPut, "/api/v2.0/projects/"+project, s.admin(),
		http.Header{"Content-Type": {"application/json"}, "X-Is-Resource-Name": {"true"}}, []byte(body))
	require.Equal(t, http.StatusOK, res.Status, "toggle proxy_referrer_api=%v on %q:\n%s", on, project, res)
	got := s.do(t, http.MethodGet, "/api/v2.0/projects/"+project, s.admin(), http.Header{"X-Is-Resource-Name": {"true"}}, nil)
	require.Equal(t, http.StatusOK, got.Status, "read project %q:\n%s", project, got)
	var p struct {
		Metadata map[string]string `json:"metadata"`
	}
	require.NoError(t, json.Unmarshal(got.Body, &p), "project %q:\n%s", project, got)
	require.Equal(t, strconv.FormatBool(on), p.Metadata["proxy_referrer_api"], "project %q after the PUT:\n%s", project, got)
}

// referrersPage is one page of GET /v2/<repo>/referrers/<digest>.
type referrersPage struct {
	res   httpResult
	index ocispec.Index
	next  *url.URL // the rel="next" Link resolved against the request URL; nil on the last page
}

// getReferrers GETs pathAndQuery (/v2/...) on srv anonymously and decodes a 200 image index and its Link.
func getReferrers(t *testing.T, srv *server, pathAndQuery string) referrersPage {
	t.Helper()
	res := srv.do(t, http.MethodGet, pathAndQuery, nil, nil, nil)
	require.Equal(t, http.StatusOK, res.Status, "referrers page:\n%s", res)
	require.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), ocispec.MediaTypeImageIndex), "content type:\n%s", res)
	var p referrersPage
	p.res = res
	require.NoError(t, json.Unmarshal(res.Body, &p.index), "referrers body:\n%s", res)
	require.Equal(t, ocispec.MediaTypeImageIndex, p.index.MediaType, "referrers body:\n%s", res)
	if link := res.Header.Get("Link"); link != "" {
		p.next = parseNextLink(t, res.URL, link)
	}
	return p
}

// parseNextLink returns the rel="next" target of a Link header, resolved against the request URL.
func parseNextLink(t *testing.T, requestURL, link string) *url.URL {
	t.Helper()
	for part := range strings.SplitSeq(link, ",") {
		part = strings.TrimSpace(part)
		open, closing := strings.Index(part, "<"), strings.Index(part, ">")
		if open != 0 || closing < 0 || !strings.Contains(strings.ReplaceAll(part[closing+1:], " ", ""), `rel="next"`) {
			continue
		}
		base, err := url.Parse(requestURL)
		require.NoError(t, err)
		u, err := base.Parse(part[1:closing])
		require.NoError(t, err, "Link target %q", part)
		return u
	}
	t.Fatalf("Link header without rel=\"next\": %q", link)
	return nil
}

// pusher pushes blobs and manifests to a registry over HTTP, with Basic credentials when auth is set
// (Berth accepts them on /v2/). Used where running a client per object would be too slow.
type pusher struct {
	t    *testing.T
	base string // http://host:port
	auth *basicAuth
}

func (p pusher) send(method, rawURL, contentType string, body []byte, want int) http.Header {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, rawURL, bytes.NewReader(body))
	require.NoError(p.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if p.auth != nil {
		req.SetBasicAuth(p.auth.user, p.auth.password)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(p.t, err, "%s %s", method, rawURL)
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	require.Equal(p.t, want, resp.StatusCode, "%s %s: %s", method, rawURL, msg)
	return resp.Header
}

// blob uploads data (POST, then PUT ?digest=) and returns its descriptor with mediaType.
func (p pusher) blob(repo, mediaType string, data []byte) ocispec.Descriptor {
	p.t.Helper()
	d := digest.FromBytes(data)
	start := p.base + "/v2/" + repo + "/blobs/uploads/"
	h := p.send(http.MethodPost, start, "", nil, http.StatusAccepted)
	base, err := url.Parse(start)
	require.NoError(p.t, err)
	loc, err := base.Parse(h.Get("Location"))
	require.NoError(p.t, err, "upload Location %q", h.Get("Location"))
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	p.send(http.MethodPut, loc.String(), "application/octet-stream", data, http.StatusCreated)
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// manifest puts body under ref ("" = its digest) and returns its descriptor.
func (p pusher) manifest(repo, ref, mediaType string, body []byte) ocispec.Descriptor {
	p.t.Helper()
	d := digest.FromBytes(body)
	if ref == "" {
		ref = d.String()
	}
	p.send(http.MethodPut, p.base+"/v2/"+repo+"/manifests/"+ref, mediaType, body, http.StatusCreated)
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body))}
}

// emptyJSON is the OCI empty descriptor's content ("{}").
var emptyJSON = []byte("{}")

// artifactManifest returns an OCI image manifest of artifactType over the empty config, with the given
// layers, subject (nil: none) and annotations.
func artifactManifest(t *testing.T, artifactType string, layers []ocispec.Descriptor, subject *ocispec.Descriptor, annotations map[string]string) []byte {
	t.Helper()
	if len(layers) == 0 {
		layers = []ocispec.Descriptor{ocispec.DescriptorEmptyJSON}
	}
	b, err := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       ocispec.DescriptorEmptyJSON,
		Layers:       layers,
		Subject:      subject,
		Annotations:  annotations,
	})
	require.NoError(t, err)
	return b
}

// imageConfig returns the JSON of a linux/arch image config whose one layer has diff ID layer.
func imageConfig(t *testing.T, arch string, layer digest.Digest) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"architecture": arch, "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layer.String()}},
	})
	require.NoError(t, err)
	return b
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// digestSet returns the digests of descs as a set.
func digestSet(descs []ocispec.Descriptor) map[string]bool {
	out := make(map[string]bool, len(descs))
	for _, d := range descs {
		out[d.Digest.String()] = true
	}
	return out
}

// metric returns the value of one sample of srv's /metrics ("name{labels}" exactly as exposed), 0 when
// the sample is absent.
func (s *server) metric(t *testing.T, sample string) float64 {
	t.Helper()
	res := s.do(t, http.MethodGet, "/metrics", nil, nil, nil)
	require.Equal(t, http.StatusOK, res.Status, "metrics:\n%s", res)
	for line := range strings.SplitSeq(string(res.Body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err, "metric line %q", line)
			return f
		}
	}
	return 0
}

// waitMetricAbove polls /metrics until sample exceeds floor (the condition is observed, not timed);
// it fails after startupTimeout.
func (s *server) waitMetricAbove(t *testing.T, sample string, floor float64) {
	t.Helper()
	deadline := time.Now().Add(startupTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for s.metric(t, sample) <= floor {
		require.False(t, time.Now().After(deadline), "%s still %v after %s", sample, floor, startupTimeout)
		<-tick.C
	}
}
