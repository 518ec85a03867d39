package proxy_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/clocktest"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/proxy"
)

// clock is the proxy's time, moved by the tests instead of sleeping.
type clock = clocktest.Clock

func newClock() *clock { return clocktest.New(time.Unix(1_700_000_000, 0)) }

// withOptions restarts e's proxy service and server with opts on clk, and makes the project public with
// md added to its metadata, so anonymous clients can pull.
func (e *env) withOptions(opts proxy.Options, clk *clock, md map[string]string) {
	e.t.Helper()
	opts.Now = clk.Now
	e.opts = opts
	p := *e.project
	p.Metadata = map[string]string{meta.MetaPublic: "true"}
	for k, v := range md {
		p.Metadata[k] = v
	}
	require.NoError(e.t, e.store.UpdateProject(context.Background(), &p))
	*e.project = p
	e.serve(e.store)
}

// anon sends method to Berth's /v2/<project>/<rest> without credentials and returns the status.
func (e *env) anon(method, rest string) int {
	req, err := http.NewRequest(method, e.srv.URL+"/v2/"+project+"/"+rest, http.NoBody)
	if err != nil {
		panic(err) // a constant URL; require is not safe off the test goroutine
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode
}

// flood sends n anonymous requests from 32 concurrent clients and returns how many answered each status.
func (e *env) flood(n int, method, rest string) map[int]int {
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
		next     = make(chan struct{}, n)
	)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range 32 {
		wg.Go(func() {
			for range next {
				s := e.anon(method, rest)
				mu.Lock()
				statuses[s]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return statuses
}

// 1000 anonymous misses of one tag cost at most two upstream requests within the negative-cache
// window (the issue saw 1000 HEADs); the same holds for a missing digest, a missing blob and the tag
// list of a missing repository. Once the
// window passed, the upstream is asked again and a tag pushed meanwhile is found. With the negative
// cache off, every miss asks.
func TestNegativeCache(t *testing.T) {
	up := newUpstream(t, distribution)
	e := newEnv(t, up)
	clk := newClock()
	e.withOptions(proxy.Options{NegativeCacheTTL: 30 * time.Second}, clk, nil)
	missing := digest.FromString("missing")

	got := e.flood(1000, http.MethodGet, "app/manifests/v1")
	require.Equal(t, map[int]int{http.StatusNotFound: 1000}, got)
	require.LessOrEqual(t, up.hits.count(http.MethodHead, "manifests"), 2, "tag misses asked upstream")
	require.GreaterOrEqual(t, up.hits.count(http.MethodHead, "manifests"), 1)

	require.Equal(t, map[int]int{http.StatusNotFound: 1000}, e.flood(1000, http.MethodGet, "app/manifests/"+missing.String()))
	require.LessOrEqual(t, up.hits.path(http.MethodGet, "/v2/app/manifests/"+missing.String()), 2, "digest misses asked upstream")

	require.Equal(t, map[int]int{http.StatusNotFound: 1000}, e.flood(1000, http.MethodGet, "app/blobs/"+missing.String()))
	require.Equal(t, map[int]int{http.StatusNotFound: 1000}, e.flood(1000, http.MethodHead, "app/blobs/"+missing.String()))
	require.LessOrEqual(t, up.hits.count(http.MethodGet, "blobs")+up.hits.count(http.MethodHead, "blobs"), 2, "blob misses asked upstream")

	require.Equal(t, map[int]int{http.StatusNotFound: 1000}, e.flood(1000, http.MethodGet, "nothing/tags/list"))
	require.LessOrEqual(t, up.hits.count(http.MethodGet, "tags"), 2, "tag lists of a missing repository asked upstream")

	// Within the window a tag pushed upstream is still unknown here; after it, found.
	img := up.PushImage(t, "app", "v1")
	heads := up.hits.count(http.MethodHead, "manifests")
	requireCode(t, e.get("app/manifests/v1"), http.StatusNotFound, "MANIFEST_UNKNOWN")
	require.Equal(t, heads, up.hits.count(http.MethodHead, "manifests"))
	clk.Advance(30 * time.Second)
	requireOK(t, e.get("app/manifests/v1"), img.Body)
	require.Equal(t, heads+1, up.hits.count(http.MethodHead, "manifests"))

	// Off: every miss asks.
	e.withOptions(proxy.Options{}, clk, nil)
	before := up.hits.count(http.MethodHead, "manifests")
	for range 3 {
		requireCode(t, e.get("app/manifests/v2"), http.StatusNotFound, "MANIFEST_UNKNOWN")
	}
	require.Equal(t, before+3, up.hits.count(http.MethodHead, "manifests"))
}

// A tag is checked upstream at most once per freshness window (project metadata
// proxy_tag_freshness_seconds, else Options.TagFreshness), however many clients pull it at once; a
// tag moved upstream shows once the window has passed. A window of 0 asks on every pull.
func TestTagFreshness(t *testing.T) {
	tests := []struct {
		name   string
		def    time.Duration
		md     map[string]string
		window time.Duration // 0: every pull asks
	}{
		{"project metadata", 0, map[string]string{meta.MetaProxyTagFreshnessSecond: "60"}, time.Minute},
		{"default", 45 * time.Second, nil, 45 * time.Second},
		{"metadata 0 overrides the default", time.Minute, map[string]string{meta.MetaProxyTagFreshnessSecond: "0"}, 0},
		{"metadata too large is clamped, not overflowed", 0, map[string]string{meta.MetaProxyTagFreshnessSecond: "9300000000"}, 7 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, up, a := newImageEnv(t, distribution, "app", "v1")
			clk := newClock()
			e.withOptions(proxy.Options{TagFreshness: tt.def}, clk, tt.md)
			heads := func() int { return up.hits.count(http.MethodHead, "manifests") }

			requireOK(t, e.get("app/manifests/v1"), a.Body)
			require.Equal(t, 1, heads())
			if tt.window == 0 {
				for range 5 {
					requireOK(t, e.get("app/manifests/v1"), a.Body)
				}
				require.Equal(t, 6, heads(), "every pull asks")
				return
			}
			require.Equal(t, map[int]int{http.StatusOK: 200}, e.flood(200, http.MethodGet, "app/manifests/v1"))
			require.Equal(t, 1, heads(), "within the window the local copy answers")

			b := up.PushImage(t, "app", "v1") // the tag moves upstream
			clk.Advance(tt.window - time.Second)
			requireOK(t, e.get("app/manifests/v1"), a.Body)
			require.Equal(t, 1, heads())

			clk.Advance(time.Second)
			require.Equal(t, map[int]int{http.StatusOK: 200}, e.flood(200, http.MethodGet, "app/manifests/v1"))
			require.Equal(t, 2, heads(), "concurrent checks after the window are one")
			requireOK(t, e.get("app/manifests/v1"), b.Body)
			require.Equal(t, 1, up.hits.path(http.MethodGet, "/v2/app/manifests/"+b.Manifest.Digest.String()))

			// A tag deleted here is asked for again at its next pull.
			r := e.do(http.MethodDelete, "app/manifests/v1", "", nil)
			require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
			requireOK(t, e.get("app/manifests/v1"), b.Body)
			require.Equal(t, 3, heads())
		})
	}
}

// A HEAD of a blob not held is one upstream HEAD however many clients ask (the size of a digest cannot
// change, so it is remembered): nothing is downloaded or stored, and a GET afterwards downloads it once.
func TestBlobHeadDoesNotDownload(t *testing.T) {
	e, up, img := newImageEnv(t, distribution, "app", "v1")
	e.withOptions(proxy.Options{}, newClock(), nil)
	layer := img.Layers[0].Digest
	path := "/v2/app/blobs/" + layer.String()

	r := e.do(http.MethodHead, "app/blobs/"+layer.String(), "", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, strconv.Itoa(len(img.Blobs[layer])), r.header.Get("Content-Length"))
	require.Equal(t, 1, up.hits.path(http.MethodHead, path))
	require.Zero(t, up.hits.path(http.MethodGet, path))
	e.requireNotStored(layer)

	require.Equal(t, map[int]int{http.StatusOK: 100}, e.flood(100, http.MethodHead, "app/blobs/"+layer.String()))
	require.Equal(t, 1, up.hits.path(http.MethodHead, path), "a blob's size is remembered: it cannot change")
	require.Zero(t, up.hits.path(http.MethodGet, path), "HEADs download nothing")
	e.requireNotStored(layer)

	requireOK(t, e.get("app/blobs/"+layer.String()), img.Blobs[layer])
	require.Equal(t, 1, up.hits.path(http.MethodGet, path))
	e.requireStored(layer, img.Blobs[layer])
	heads := up.hits.path(http.MethodHead, path)
	require.Equal(t, http.StatusOK, e.do(http.MethodHead, "app/blobs/"+layer.String(), "", nil).status)
	require.Equal(t, heads, up.hits.path(http.MethodHead, path), "a held blob is answered locally")
}

// An upstream whose HEAD announces no length: a HEAD still answers the real size, which only the
// download can tell, so that one HEAD downloads (once) and stores the blob.
func TestBlobHeadWithoutLengthDownloads(t *testing.T) {
	up, data, d := newBlobUpstream(t, distribution, 64<<10)
	e := newEnv(t, up)
	up.faults.set(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if !kindOf(r, http.MethodHead, "blobs") {
			next.ServeHTTP(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
	})
	r := e.do(http.MethodHead, "app/blobs/"+d.String(), "", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, strconv.Itoa(len(data)), r.header.Get("Content-Length"))
	require.Equal(t, 1, up.hits.count(http.MethodHead, "blobs"))
	require.Equal(t, 1, up.hits.count(http.MethodGet, "blobs"))
	e.requireStored(d, data)
}
