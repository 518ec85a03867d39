package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRetentionLastPull: 30 images pulled through a proxy-cache project with crane, 10 of them pulled
// again five days later; ten days after the first pulls (the server's clock advanced through
// BERTH_TEST_CLOCK_OFFSET_FILE, no sleeping) the project's default policy, "retain what was pulled within
// 7 days", removes exactly the 20 not pulled since, and `crane pull` of a removed one pulls it through
// again. A cosign signature pushed into the proxy project for a kept image survives and verifies; the
// one pushed for a removed image goes with it, and the server logs that.
func TestRetentionLastPull(t *testing.T) {
	t.Parallel()
	up := ggcrUpstream(t)
	const n, again = 30, 10
	for i := range n {
		up.reg.PushImage(t, "lib/app", "v"+strconv.Itoa(i))
	}
	offset := filepath.Join(t.TempDir(), "clock-offset")
	setOffset := func(d time.Duration) { require.NoError(t, os.WriteFile(offset, []byte(d.String()), 0o600)) }
	setOffset(0)
	proxy := startServer(t, serverConfig{env: []string{"BERTH_TEST_CLOCK_OFFSET_FILE=" + offset}})
	id := proxy.createRegistry(t, "upstream", up.URL, up.Auth)
	proxy.createProxyProject(t, "cache", id)
	policy := retentionID(t, proxy, "cache")
	unschedule(t, proxy, policy) // the test runs it itself: no daily run when the clock jumps past midnight

	c := newClients(t, proxy, "crane", "cosign", "oras")
	c.loginCrane()
	pull := func(i int) {
		c.must("crane", "pull", fmt.Sprintf("%s/cache/lib/app:v%d", proxy.Host, i), "img.tar")
	}
	for i := range n {
		pull(i)
	}
	require.Len(t, artifactTags(t, proxy, "cache", "lib/app"), n)
	c.must("cosign", "generate-key-pair")
	signed := map[int]string{}
	for _, i := range []int{0, 25} { // 0 is pulled again and kept; 25 is not
		ref := fmt.Sprintf("%s/cache/lib/app:v%d", proxy.Host, i)
		signed[i] = fmt.Sprintf("%s/cache/lib/app@%s", proxy.Host, strings.TrimSpace(c.must("crane", "digest", ref)))
		c.must("cosign", "sign", "--key", "cosign.key", "--allow-http-registry",
			"--use-signing-config=false", "--tlog-upload=false", "-y", signed[i])
		require.Len(t, c.discover(signed[i], typeCosignBundle), 1)
	}
	setOffset(5 * 24 * time.Hour)
	for i := range again {
		pull(i)
	}
	setOffset(10 * 24 * time.Hour)

	exec := runRetention(t, proxy, policy)
	require.Equal(t, "Succeed", exec["status"], "%v", exec)
	var want []string
	for i := range again {
		want = append(want, "v"+strconv.Itoa(i))
	}
	slices.Sort(want)
	require.Equal(t, want, artifactTags(t, proxy, "cache", "lib/app"), "exactly the images pulled within 7 days stay")

	c.must("cosign", "verify", "--key", "cosign.pub", "--allow-http-registry", "--insecure-ignore-tlog=true", signed[0])
	require.Contains(t, proxy.logTail(400), "removing a referrer pushed here with its subject")
	require.Len(t, c.discover(signed[0], typeCosignBundle), 1, "the kept image's signature survives")
	require.Empty(t, c.discover(signed[25], typeCosignBundle), "the removed image's signature went with it")

	pull(17) // removed: pulled through again
	require.Contains(t, artifactTags(t, proxy, "cache", "lib/app"), "v17")
}

// retentionID reads the project's retention_id metadata.
func retentionID(t *testing.T, s *server, project string) int64 {
	t.Helper()
	res := s.do(t, http.MethodGet, "/api/v2.0/projects/"+project, s.admin(), http.Header{"X-Is-Resource-Name": {"true"}}, nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res)
	var p struct {
		Metadata map[string]string `json:"metadata"`
	}
	require.NoError(t, json.Unmarshal(res.Body, &p))
	id, err := strconv.ParseInt(p.Metadata["retention_id"], 10, 64)
	require.NoError(t, err, "a proxy-cache project has a default retention policy: %s", res)
	return id
}

// unschedule clears the policy's cron with GET and PUT /api/v2.0/retentions/{id}, keeping its rules.
func unschedule(t *testing.T, s *server, policy int64) {
	t.Helper()
	path := fmt.Sprintf("/api/v2.0/retentions/%d", policy)
	res := s.do(t, http.MethodGet, path, s.admin(), nil, nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res)
	var p map[string]any
	require.NoError(t, json.Unmarshal(res.Body, &p))
	rules := p["rules"].([]any)
	require.Len(t, rules, 1)
	require.Equal(t, "nDaysSinceLastPull", rules[0].(map[string]any)["template"], "the default policy")
	p["trigger"] = map[string]any{"kind": "Schedule", "settings": map[string]any{"cron": ""}}
	body, err := json.Marshal(p)
	require.NoError(t, err)
	res = s.do(t, http.MethodPut, path, s.admin(), http.Header{"Content-Type": {"application/json"}}, body)
	require.Equal(t, http.StatusOK, res.Status, "%s", res)
}

// runRetention starts an execution of the policy and waits (bounded) for it to end.
func runRetention(t *testing.T, s *server, policy int64) map[string]any {
	t.Helper()
	path := fmt.Sprintf("/api/v2.0/retentions/%d/executions", policy)
	res := s.do(t, http.MethodPost, path, s.admin(), http.Header{"Content-Type": {"application/json"}}, []byte(`{"dry_run":false}`))
	require.Equal(t, http.StatusCreated, res.Status, "%s", res)
	deadline := time.Now().Add(time.Minute)
	for {
		res = s.do(t, http.MethodGet, path, s.admin(), nil, nil)
		require.Equal(t, http.StatusOK, res.Status, "%s", res)
		var list []map[string]any
		require.NoError(t, json.Unmarshal(res.Body, &list))
		require.NotEmpty(t, list)
		if list[0]["status"] != "Running" {
			return list[0]
		}
		require.True(t, time.Now().Before(deadline), "the execution did not end: %s", res)
		time.Sleep(50 * time.Millisecond) // waiting for the run, not advancing time
	}
}

// artifactTags lists the tags of every artifact held in the repository, sorted.
func artifactTags(t *testing.T, s *server, project, repo string) []string {
	t.Helper()
	res := s.do(t, http.MethodGet, fmt.Sprintf("/api/v2.0/projects/%s/repositories/%s/artifacts?page_size=100&with_tag=true",
		project, url2(repo)), s.admin(), nil, nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res)
	var arts []struct {
		Tags []struct {
			Name string `json:"name"`
		} `json:"tags"`
	}
	require.NoError(t, json.Unmarshal(res.Body, &arts))
	var out []string
	for _, a := range arts {
		for _, tag := range a.Tags {
			out = append(out, tag.Name)
		}
	}
	slices.Sort(out)
	return out
}

// url2 encodes a repository name twice, as Harbor's clients send it in paths ("a/b" -> "a%252Fb").
func url2(repo string) string {
	out := ""
	for _, r := range repo {
		if r == '/' {
			out += "%252F"
		} else {
			out += string(r)
		}
	}
	return out
}
