package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

// TestMultiNode runs three nodes on one S3 bucket, PostgreSQL and Redis behind HAProxy: pushes through one node are pulled through another, a
// chunked upload spreads over all three, a cold blob and a cold referrers list asked of every node at
// once cost one upstream request each, and a rolling restart of every node under load fails no request.
func TestMultiNode(t *testing.T) {
	t.Parallel()
	blobs := newGatedCounter("/blobs/")
	refs := newGatedCounter("/referrers/")
	up := registrytest.NewGGCR(t, true, registrytest.WithWrapper(blobs.wrap), registrytest.WithWrapper(refs.wrap))
	img := up.PushImage(t, upstreamRepo, "v1")
	sig := up.PushReferrer(t, upstreamRepo, img.Manifest, typeSig, nil)
	layer := bytes.Repeat([]byte("one fill across nodes\n"), 200_000) // ~4 MiB
	layerDesc := up.PushBlob(t, upstreamRepo, layer)

	c := startCluster(t, 3)
	c.front.createProject(t, "local", false)
	id := c.front.createRegistry(t, "upstream", up.URL, nil)
	c.front.createProxyProject(t, "cache", id)
	// Each node keeps projects in process for 2 s: let every node see the new ones.
	time.Sleep(2500 * time.Millisecond)

	t.Run("push through one node, pull through another", func(t *testing.T) { pushPullAcrossNodes(t, c) })
	t.Run("chunked upload across nodes", func(t *testing.T) { chunkedUploadAcrossNodes(t, c) })
	t.Run("one upstream blob GET for 30 cold pulls", func(t *testing.T) {
		var urls []string
		for i := range 30 {
			urls = append(urls, c.nodes[i%len(c.nodes)].URL+"/v2/cache/"+upstreamRepo+"/blobs/"+layerDesc.Digest.String())
		}
		for i, a := range concurrentGets(t, urls, blobs) {
			require.NoError(t, a.err, "client %d", i)
			require.Equal(t, http.StatusOK, a.status, "client %d: %s", i, a.body)
			require.Equal(t, layerDesc.Digest, digest.FromBytes(a.body), "client %d", i)
		}
		require.EqualValues(t, 1, blobs.calls.Load(), "upstream blob GETs for 30 cold pulls over 3 nodes:\n%s", blobs.requests())
		c.requireInBucket(t, layerDesc.Digest)
	})
	t.Run("one upstream referrers request for 200 cold requests", func(t *testing.T) {
		var urls []string
		for i := range 200 {
			urls = append(urls, c.nodes[i%len(c.nodes)].URL+"/v2/cache/"+upstreamRepo+"/referrers/"+img.Manifest.Digest.String())
		}
		for i, a := range concurrentGets(t, urls, refs) {
			require.NoError(t, a.err, "client %d", i)
			require.Equal(t, http.StatusOK, a.status, "client %d: %s", i, a.body)
			require.Contains(t, string(a.body), sig.Digest.String(), "client %d", i)
		}
		require.EqualValues(t, 1, refs.calls.Load(), "upstream referrers requests for 200 cold requests over 3 nodes:\n%s\nnode warnings:\n%s",
			refs.requests(), c.warnings())
	})
	t.Run("rolling restart under load", func(t *testing.T) { rollingRestart(t, c) })
}

// pushPullAcrossNodes: oras pushes through node 1 while node 2 serves pulls of what was pushed before.
func pushPullAcrossNodes(t *testing.T, c *cluster) {
	pusher := newClients(t, c.nodes[0], "oras")
	pusher.loginOras()
	puller := newClients(t, c.nodes[1], "oras")
	puller.loginOras()
	pushRef := func(tag string) string { return c.nodes[0].Host + "/local/app:" + tag }
	pullRef := func(tag string) string { return c.nodes[1].Host + "/local/app:" + tag }
	pusher.writeFile("v1.txt", []byte("version 1\n"))
	pusher.orasPush(pushRef("v1"), typeApp, "v1.txt:text/plain")
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 2; i <= 4; i++ {
			name := fmt.Sprintf("v%d.txt", i)
			pusher.writeFile(name, []byte(fmt.Sprintf("version %d\n", i)))
			pusher.orasPush(pushRef(fmt.Sprintf("v%d", i)), typeApp, name+":text/plain")
		}
	})
	for i := range 3 {
		out := fmt.Sprintf("out%d", i)
		puller.must("oras", "pull", "--plain-http", "-o", out, pullRef("v1"))
		require.Equal(t, []byte("version 1\n"), puller.readFile(out+"/v1.txt"))
	}
	wg.Wait()
	for i := 2; i <= 4; i++ { // every node serves what node 1 stored
		for _, n := range c.nodes[1:] {
			cl := newClients(t, n, "oras")
			cl.loginOras()
			cl.must("oras", "pull", "--plain-http", "-o", "pulled", n.Host+fmt.Sprintf("/local/app:v%d", i))
			require.Equal(t, []byte(fmt.Sprintf("version %d\n", i)), cl.readFile(fmt.Sprintf("pulled/v%d.txt", i)))
		}
	}
}

// chunkedUploadAcrossNodes: an upload started on node 1 gets one chunk through each node and is
// finished on node 3; the blob is then served by every node.
func chunkedUploadAcrossNodes(t *testing.T, c *cluster) {
	data := bytes.Repeat([]byte("chunk across nodes "), 100_000)
	parts := [][]byte{data[:700_000], data[700_000:1_400_000], data[1_400_000:]}
	d := digest.FromBytes(data)
	res := c.nodes[0].do(t, http.MethodPost, "/v2/local/chunked/blobs/uploads/", c.nodes[0].admin(), nil, nil)
	require.Equal(t, http.StatusAccepted, res.Status, "start upload:\n%s", res)
	loc := res.Header.Get("Location")
	off := 0
	for i, p := range parts {
		n := c.nodes[i%len(c.nodes)]
		h := http.Header{"Content-Type": {"application/octet-stream"},
			"Content-Range": {fmt.Sprintf("%d-%d", off, off+len(p)-1)}}
		res = n.do(t, http.MethodPatch, pathOf(t, loc), n.admin(), h, p)
		require.Equal(t, http.StatusAccepted, res.Status, "chunk %d through node %d:\n%s", i, i%len(c.nodes)+1, res)
		loc = res.Header.Get("Location")
		off += len(p)
	}
	last := c.nodes[2]
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	res = last.do(t, http.MethodPut, pathOf(t, loc)+sep+"digest="+d.String(), last.admin(), nil, nil)
	require.Equal(t, http.StatusCreated, res.Status, "finish upload through node 3:\n%s", res)
	c.requireInBucket(t, d)
	for i, n := range c.nodes {
		res = n.do(t, http.MethodGet, "/v2/local/chunked/blobs/"+d.String(), n.admin(), nil, nil)
		require.Equal(t, http.StatusOK, res.Status, "node %d", i+1)
		require.Equal(t, sha256.Sum256(data), sha256.Sum256(res.Body), "node %d", i+1)
	}
}

// pathOf returns the path and query of a Location header (absolute or relative).
func pathOf(t *testing.T, loc string) string {
	t.Helper()
	require.NotEmpty(t, loc, "no Location")
	if i := strings.Index(loc, "://"); i >= 0 {
		rest := loc[i+3:]
		return rest[strings.Index(rest, "/"):]
	}
	return loc
}

// rollingRestart restarts every node in turn (SIGTERM, wait for exit, start again on the same port)
// while clients pull an image and discover its referrers through HAProxy; no client request may fail.
func rollingRestart(t *testing.T, c *cluster) {
	admin := newClients(t, c.front, "oras", "crane")
	admin.loginOras()
	admin.writeFile("app.txt", []byte("served during restarts\n"))
	pushed := admin.orasPush(c.front.Host+"/local/app:rolling", typeApp, "app.txt:text/plain")
	admin.writeFile("sbom.json", []byte(`{"components":[]}`))
	admin.orasAttach(c.front.Host+"/local/app@"+pushed.Digest, typeSBOM, "sbom.json:application/json")

	done := make(chan struct{})
	var ok, failed atomic.Int64
	var failures sync.Map
	var wg sync.WaitGroup
	load := func(tools string, cmd func(cl *clients) cmdResult) {
		cl := newClients(t, c.front, tools)
		if tools == "oras" {
			cl.loginOras()
		} else {
			cl.loginCrane()
		}
		wg.Go(func() {
			deadline := time.Now().Add(5 * time.Minute) // bounded even if the restarts hang
			for time.Now().Before(deadline) {
				select {
				case <-done:
					return
				default:
				}
				if r := cmd(cl); r.Err != nil {
					failed.Add(1)
					failures.Store(failed.Load(), r.String())
				} else {
					ok.Add(1)
				}
			}
		})
	}
	for range 2 {
		load("crane", func(cl *clients) cmdResult {
			return cl.exec("", "crane", "pull", "--insecure", c.front.Host+"/cache/"+upstreamRepo+":v1", "img.tar")
		})
		load("oras", func(cl *clients) cmdResult {
			return cl.exec("", "oras", "discover", "--plain-http", "--format", "json", c.front.Host+"/local/app@"+pushed.Digest)
		})
	}
	for _, n := range c.nodes {
		time.Sleep(time.Second)
		n.restart(t)
		time.Sleep(time.Second) // several health checks: HAProxy has the node back
	}
	time.Sleep(time.Second)
	close(done)
	wg.Wait()
	failures.Range(func(k, v any) bool { t.Logf("failed client request %v:\n%s", k, v); return true })
	t.Logf("rolling restart: %d client commands succeeded, %d failed", ok.Load(), failed.Load())
	require.Zero(t, failed.Load(), "client requests failed during the rolling restart")
	b, err := os.ReadFile(c.lbLog)
	require.NoError(t, err)
	for i := range c.nodes {
		// Each node left the balancer through its draining health answer, not a refused connection.
		require.Contains(t, string(b), fmt.Sprintf("Server nodes/node%d is DOWN, reason: Layer7 wrong status, code: 503", i+1), "HAProxy log:\n%s", b)
	}
	require.Greater(t, ok.Load(), int64(10), "the load ran")
}
