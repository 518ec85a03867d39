package proxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/proxy"
	"github.com/berth-registry/berth/src/pkg/storage"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// onBlobGET applies wrap to the response writer of upstream blob GETs.
func onBlobGET(wrap func(w http.ResponseWriter, r *http.Request) http.ResponseWriter) fault {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if kindOf(r, http.MethodGet, "blobs") {
			w = wrap(w, r)
		}
		next.ServeHTTP(w, r)
	}
}

// corruptWriter flips the first body byte: same length, wrong digest.
type corruptWriter struct {
	http.ResponseWriter
	done bool
}

func (c *corruptWriter) Write(p []byte) (int, error) {
	if !c.done && len(p) > 0 {
		c.done = true
		q := append([]byte(nil), p...)
		q[0] ^= 0xff
		return c.ResponseWriter.Write(q)
	}
	return c.ResponseWriter.Write(p)
}

func (c *corruptWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// truncateWriter sends half of the announced body, then aborts the connection.
type truncateWriter struct {
	http.ResponseWriter
	left int
}

func (c *truncateWriter) Write(p []byte) (int, error) {
	if len(p) >= c.left {
		_, _ = c.ResponseWriter.Write(p[:c.left])
		_ = http.NewResponseController(c.ResponseWriter).Flush()
		panic(http.ErrAbortHandler)
	}
	c.left -= len(p)
	return c.ResponseWriter.Write(p)
}

func (c *truncateWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// unsizedWriter drops Content-Length, so the upstream answers chunked without announcing a size.
type unsizedWriter struct{ http.ResponseWriter }

func (u unsizedWriter) WriteHeader(status int) {
	u.Header().Del("Content-Length")
	u.ResponseWriter.WriteHeader(status)
}

func (u unsizedWriter) Write(p []byte) (int, error) {
	u.Header().Del("Content-Length")
	return u.ResponseWriter.Write(p)
}

// gatedWriter lets the first `after` bytes through, flushes them, then holds the rest of the body until
// gate is closed (or the request ends).
type gatedWriter struct {
	http.ResponseWriter
	ctx    context.Context
	after  int
	gate   <-chan struct{}
	n      int
	passed bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	if g.n >= g.after && !g.passed {
		_ = http.NewResponseController(g.ResponseWriter).Flush()
		select {
		case <-g.gate:
			g.passed = true
		case <-g.ctx.Done():
			return 0, g.ctx.Err()
		}
	}
	n, err := g.ResponseWriter.Write(p)
	g.n += n
	return n, err
}

func gateBlobs(after int, gate <-chan struct{}) fault {
	return onBlobGET(func(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
		return &gatedWriter{ResponseWriter: w, ctx: r.Context(), after: after, gate: gate}
	})
}

// A cold blob is streamed from the upstream and stored; afterwards it is served with the upstream
// stopped. A HEAD of a cold blob is one upstream HEAD: nothing is downloaded or stored until a GET.
func TestBlobPull(t *testing.T) {
	for _, kind := range []upstreamKind{distribution, ggcr} {
		t.Run(kind.String(), func(t *testing.T) {
			e, up, img := newImageEnv(t, kind, "app", "v1")
			layer, cfg := img.Layers[0].Digest, img.Config.Digest

			r := e.get("app/blobs/" + layer.String())
			requireOK(t, r, img.Blobs[layer])
			require.Equal(t, layer.String(), r.header.Get("Docker-Content-Digest"))
			require.Equal(t, strconv.Itoa(len(img.Blobs[layer])), r.header.Get("Content-Length"))
			require.Equal(t, 1, up.hits.path(http.MethodGet, "/v2/app/blobs/"+layer.String()))
			e.requireStored(layer, img.Blobs[layer])
			size, err := e.local.StatBlob(t.Context(), e.repo("app"), layer)
			require.NoError(t, err, "linked into the repository")
			require.Equal(t, int64(len(img.Blobs[layer])), size)

			r = e.do(http.MethodHead, "app/blobs/"+cfg.String(), "", nil)
			require.Equal(t, http.StatusOK, r.status)
			require.Equal(t, strconv.Itoa(len(img.Blobs[cfg])), r.header.Get("Content-Length"))
			require.Equal(t, 1, up.hits.path(http.MethodHead, "/v2/app/blobs/"+cfg.String()))
			require.Zero(t, up.hits.path(http.MethodGet, "/v2/app/blobs/"+cfg.String()), "a HEAD downloads nothing")
			e.requireNotStored(cfg)
			requireOK(t, e.get("app/blobs/"+cfg.String()), img.Blobs[cfg])
			require.Equal(t, 1, up.hits.path(http.MethodGet, "/v2/app/blobs/"+cfg.String()))

			requireCode(t, e.get("app/blobs/"+digest.FromString("nowhere").String()), http.StatusNotFound, "BLOB_UNKNOWN")
			e.requireNoTemp()

			up.Close()
			requireOK(t, e.get("app/blobs/"+layer.String()), img.Blobs[layer])
			requireOK(t, e.get("app/blobs/"+cfg.String()), img.Blobs[cfg])
			r = e.do(http.MethodHead, "app/blobs/"+layer.String(), "", nil)
			require.Equal(t, http.StatusOK, r.status)
			requireCode(t, e.get("app/blobs/"+digest.FromString("cold").String()), http.StatusServiceUnavailable, "UPSTREAM_UNAVAILABLE")
		})
	}
}

// An upstream that announces no length: the client still gets the real Content-Length, whether it
// asks with HEAD or GET first.
func TestBlobUnknownLength(t *testing.T) {
	up := newUpstream(t, distribution)
	blobs := map[string][]byte{http.MethodHead: randomBytes(256 << 10), http.MethodGet: randomBytes(256 << 10)}
	for _, data := range blobs {
		up.PushBlob(t, "app", data)
	}
	up.faults.set(onBlobGET(func(w http.ResponseWriter, _ *http.Request) http.ResponseWriter { return unsizedWriter{w} }))
	e := newEnv(t, up)

	// The fault works: the upstream itself answers without a length.
	res, err := http.Get(up.URL + "/v2/app/blobs/" + digest.FromBytes(blobs[http.MethodGet]).String())
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	require.Equal(t, int64(-1), res.ContentLength)

	for _, first := range []string{http.MethodHead, http.MethodGet} {
		data := blobs[first]
		d := digest.FromBytes(data)
		before := up.hits.count(http.MethodGet, "blobs")
		for _, method := range []string{first, http.MethodHead, http.MethodGet} {
			r := e.do(method, "app/blobs/"+d.String(), "", nil)
			require.Equal(t, http.StatusOK, r.status, method)
			require.Equal(t, strconv.Itoa(len(data)), r.header.Get("Content-Length"), "%s after %s", method, first)
			if method == http.MethodGet {
				requireOK(t, r, data)
			}
		}
		require.Equal(t, 1, up.hits.count(http.MethodGet, "blobs")-before)
		e.requireStored(d, data)
	}
}

// An upstream that sends bytes other than the digest's, or fewer than it announced: the reader fails,
// the client never gets a complete body, nothing is stored and no temp file is left. The next pull after
// the fault is cleared downloads again and succeeds. The upstream holds its answer after the first
// 256 KiB until the client is streaming, so the failure always happens mid-stream.
func TestBlobBadUpstreamBytes(t *testing.T) {
	const size = 1 << 20
	corrupt := func(w http.ResponseWriter) http.ResponseWriter { return &corruptWriter{ResponseWriter: w} }
	truncate := func(w http.ResponseWriter) http.ResponseWriter {
		return &truncateWriter{ResponseWriter: w, left: size / 2}
	}
	cases := []struct {
		name string
		bad  func(http.ResponseWriter) http.ResponseWriter
		http bool // through Berth's handler, else the service's reader
		code errcode.Code
	}{
		{"digest mismatch, service reader", corrupt, false, errcode.ErrUpstreamInvalid},
		{"digest mismatch, HTTP client", corrupt, true, errcode.ErrUpstreamInvalid},
		{"truncated, service reader", truncate, false, errcode.ErrUpstreamUnavailable},
		{"truncated, HTTP client", truncate, true, errcode.ErrUpstreamUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up, data, d := newBlobUpstream(t, distribution, size)
			gate := make(chan struct{})
			up.faults.set(onBlobGET(func(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
				return &gatedWriter{ResponseWriter: c.bad(w), ctx: r.Context(), after: 256 << 10, gate: gate}
			}))
			e := newEnv(t, up)
			repo := e.repo("app")

			var body io.ReadCloser
			if c.http {
				req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/v2/cache/app/blobs/"+d.String(), nil)
				require.NoError(t, err)
				req.SetBasicAuth(auth.AdminUser, adminPassword)
				res, err := e.srv.Client().Do(req)
				require.NoError(t, err)
				defer func() { _ = res.Body.Close() }()
				require.Equal(t, http.StatusOK, res.StatusCode)
				body = res.Body
			} else {
				b, err := e.svc.OpenBlob(t.Context(), repo, d)
				require.NoError(t, err, "the download starts streaming")
				body = b
			}
			close(gate)
			got, err := io.ReadAll(body)
			_ = body.Close()
			require.Error(t, err, "the body must end short")
			require.Less(t, len(got), size, "the last byte is held back until the digest is verified")
			if !c.http {
				require.True(t, errcode.IsCode(err, c.code), "reader error: %v", err)
			}

			e.settle()
			_, err = e.fs.Stat(t.Context(), d)
			require.ErrorIs(t, err, storage.ErrNotFound)
			e.requireNoTemp()
			_, err = e.local.StatBlob(t.Context(), repo, d)
			require.True(t, errcode.IsCode(err, errcode.ErrBlobUnknown), "not linked: %v", err)

			up.faults.set(nil)
			requireOK(t, e.get("app/blobs/"+d.String()), data)
			require.Equal(t, 2, up.hits.count(http.MethodGet, "blobs"))
			e.requireStored(d, data)
		})
	}
}

// A client that gives up mid-way stops only its own reader: the download goes on for the others and
// into storage, without a second upstream request.
func TestBlobClientCancel(t *testing.T) {
	const size = 4 << 20
	cases := []struct {
		name         string
		cancelsFirst bool // the cancelling client starts the download
		otherJoins   bool // the other client opens before the download resumes (else after)
	}{
		{"leader cancels, follower completes", true, true},
		{"follower cancels, leader completes", false, true},
		{"only client cancels, the download still completes", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up, data, d := newBlobUpstream(t, distribution, size)
			gate := make(chan struct{})
			up.faults.set(gateBlobs(1<<20, gate))
			e := newEnv(t, up)
			repo := e.repo("app")

			cctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var canceller, other io.ReadCloser
			open := func(ctx context.Context) io.ReadCloser {
				b, err := e.svc.OpenBlob(ctx, repo, d)
				require.NoError(t, err)
				return b
			}
			if c.cancelsFirst {
				canceller = open(cctx)
				if c.otherJoins {
					other = open(t.Context())
				}
			} else {
				other = open(t.Context())
				canceller = open(cctx)
			}
			head := make([]byte, 64<<10)
			_, err := io.ReadFull(canceller, head)
			require.NoError(t, err)
			require.Equal(t, data[:len(head)], head)
			cancel()
			_, err = io.Copy(io.Discard, canceller)
			require.ErrorIs(t, err, context.Canceled, "the held-back rest never reaches a cancelled reader")
			require.NoError(t, canceller.Close())

			close(gate)
			if other == nil {
				other = open(t.Context())
			}
			got, err := io.ReadAll(other)
			require.NoError(t, err)
			require.NoError(t, other.Close())
			require.Equal(t, digest.FromBytes(data), digest.FromBytes(got))
			require.Equal(t, 1, up.hits.count(http.MethodGet, "blobs"))
			e.requireStored(d, data)
			e.requireNoTemp()
		})
	}
}

// 20 concurrent pulls of one cold 64 MiB blob: one upstream GET, and every client streams identical,
// verified bytes from it while it is still downloading.
func TestBlobConcurrentColdPulls(t *testing.T) {
	const clients, size = 20, 64 << 20
	up, _, d := newBlobUpstream(t, distribution, size)
	// Hold the upstream after the first MiB until every client has its response headers: all of them
	// are then provably streaming from the one download in progress.
	gate := make(chan struct{})
	up.faults.set(gateBlobs(1<<20, gate))
	e := newEnv(t, up)

	type result struct {
		status int
		size   int64
		sum    digest.Digest
		err    error
	}
	var started sync.WaitGroup
	started.Add(clients)
	results := make(chan result, clients)
	for range clients {
		go func() {
			var once sync.Once
			defer once.Do(started.Done)
			req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/v2/cache/app/blobs/"+d.String(), nil)
			if err != nil {
				results <- result{err: err}
				return
			}
			req.SetBasicAuth(auth.AdminUser, adminPassword)
			res, err := e.srv.Client().Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer func() { _ = res.Body.Close() }()
			once.Do(started.Done)
			h := sha256.New()
			n, err := io.Copy(h, res.Body)
			results <- result{status: res.StatusCode, size: n, sum: digest.NewDigest(digest.SHA256, h), err: err}
		}()
	}
	started.Wait()
	close(gate)
	for range clients {
		r := <-results
		require.NoError(t, r.err)
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, int64(size), r.size)
		require.Equal(t, d, r.sum)
	}
	require.Equal(t, 1, up.hits.path(http.MethodGet, "/v2/app/blobs/"+d.String()))
	e.settle()
	_, err := e.fs.Stat(t.Context(), d)
	require.NoError(t, err)
	e.requireNoTemp()
}

// missOnce is the local service answering its next blob lookup as missing, as it looks to a client that
// checked just before another client's download committed the blob and left the group of fills.
type missOnce struct {
	proxy.Local
	miss atomic.Bool
}

func (m *missOnce) StatBlob(ctx context.Context, repo content.Repo, d digest.Digest) (int64, error) {
	if m.miss.CompareAndSwap(true, false) {
		return 0, errcode.ErrBlobUnknown.New()
	}
	return m.Local.StatBlob(ctx, repo, d)
}

func (m *missOnce) OpenBlob(ctx context.Context, repo content.Repo, d digest.Digest) (content.BlobContent, error) {
	if m.miss.CompareAndSwap(true, false) {
		return nil, errcode.ErrBlobUnknown.New()
	}
	return m.Local.OpenBlob(ctx, repo, d)
}

// A client that missed the blob locally just before it was committed starts no second download: the
// new fill finds the blob held and serves the local copy.
func TestBlobMissJustBeforeCommit(t *testing.T) {
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			up, data, d := newBlobUpstream(t, distribution, 64<<10)
			e := newEnv(t, up)
			requireOK(t, e.get("app/blobs/"+d.String()), data)
			e.settle() // committed and linked: the fill has left the group

			late := &missOnce{Local: e.local}
			late.miss.Store(true)
			svc := proxy.New(late, proxy.NewClients(e.store, nil, upstream.Options{}), e.fs, e.store, slog.New(slog.DiscardHandler), proxy.Options{})
			if method == http.MethodHead {
				size, err := svc.StatBlob(t.Context(), e.repo("app"), d)
				require.NoError(t, err)
				require.Equal(t, int64(len(data)), size)
			} else {
				b, err := svc.OpenBlob(t.Context(), e.repo("app"), d)
				require.NoError(t, err)
				got, err := io.ReadAll(b)
				require.NoError(t, err)
				require.NoError(t, b.Close())
				require.Equal(t, data, got)
			}
			require.False(t, late.miss.Load(), "the stale miss was served")
			require.Equal(t, 1, up.hits.count(http.MethodGet, "blobs"))
		})
	}
}

// heldLinks is the proxy's link store holding LinkBlob until gate is closed (nil: not held), and
// failing it while fail is set.
type heldLinks struct {
	meta.BlobLinkStore
	gate <-chan struct{}
	fail atomic.Bool
}

func (h *heldLinks) LinkBlob(ctx context.Context, projectID int64, repo, d string, size int64) error {
	if h.gate != nil {
		select {
		case <-h.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if h.fail.Load() {
		return errors.New("injected link failure")
	}
	return h.BlobLinkStore.LinkBlob(ctx, projectID, repo, d, size)
}

// fetch GETs Berth's /v2/<project>/<rest> as the admin, for goroutines other than the test's.
func (e *env) fetch(rest string) (int, []byte, error) { return adminGet(e.srv, rest) }

// adminGet GETs srv's /v2/<project>/<rest> as the admin and returns the status and the body; it
// reports errors instead of failing a test, so goroutines other than the test's may call it.
func adminGet(srv *httptest.Server, rest string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v2/"+project+"/"+rest, nil)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(auth.AdminUser, adminPassword)
	res, err := srv.Client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// A client gets the whole blob as soon as it is verified, before it is made durable and linked; a
// pull arriving meanwhile waits for the blob to be stored and is served without a second download.
func TestBlobReleasedBeforeStored(t *testing.T) {
	up, data, d := newBlobUpstream(t, distribution, 4<<20)
	e := newEnv(t, up)
	repo := e.repo("app")
	gate := make(chan struct{})
	e.serve(&heldLinks{BlobLinkStore: e.store, gate: gate})

	requireOK(t, e.get("app/blobs/"+d.String()), data)
	_, err := e.local.StatBlob(t.Context(), repo, d)
	require.True(t, errcode.IsCode(err, errcode.ErrBlobUnknown), "not linked yet: %v", err)

	type result struct {
		status int
		body   []byte
		err    error
	}
	second := make(chan result, 1)
	go func() {
		status, body, err := e.fetch("app/blobs/" + d.String())
		second <- result{status, body, err}
	}()
	close(gate)
	r := <-second
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.status)
	require.True(t, bytes.Equal(data, r.body), "second pull's body differs")

	e.requireStored(d, data)
	e.requireNoTemp()
	size, err := e.local.StatBlob(t.Context(), repo, d)
	require.NoError(t, err, "linked")
	require.Equal(t, int64(len(data)), size)
	require.Equal(t, 1, up.hits.count(http.MethodGet, "blobs"))
}

// When storing a verified blob fails, the client that got it is served all the same; the blob is not
// held, and the next pull downloads it again.
func TestBlobVerifiedButNotStored(t *testing.T) {
	up, data, d := newBlobUpstream(t, distribution, 1<<20)
	e := newEnv(t, up)
	repo := e.repo("app")
	links := &heldLinks{BlobLinkStore: e.store}
	links.fail.Store(true)
	e.serve(links)

	requireOK(t, e.get("app/blobs/"+d.String()), data)
	e.settle()
	_, err := e.local.StatBlob(t.Context(), repo, d)
	require.True(t, errcode.IsCode(err, errcode.ErrBlobUnknown), "not linked: %v", err)
	e.requireNoTemp()

	links.fail.Store(false)
	requireOK(t, e.get("app/blobs/"+d.String()), data)
	require.Equal(t, 2, up.hits.count(http.MethodGet, "blobs"))
	e.requireStored(d, data)
	_, err = e.local.StatBlob(t.Context(), repo, d)
	require.NoError(t, err)
}

// FetchBlob returns once the blob is stored (no waiting on the caller's side), shares the download with
// clients, and reports a bad upstream blob without storing it.
func TestFetchBlob(t *testing.T) {
	e, up, img := newImageEnv(t, distribution, "app", "v1")
	ctx := t.Context()
	repo := e.repo("app")
	layer := img.Layers[0].Digest

	require.NoError(t, e.svc.FetchBlob(ctx, repo, layer))
	size, err := e.local.StatBlob(ctx, repo, layer)
	require.NoError(t, err, "stored and linked when FetchBlob returns")
	require.Equal(t, int64(len(img.Blobs[layer])), size)
	require.NoError(t, e.svc.FetchBlob(ctx, repo, layer), "held: nothing to do")
	requireOK(t, e.get("app/blobs/"+layer.String()), img.Blobs[layer])
	require.Equal(t, 1, up.hits.path(http.MethodGet, "/v2/app/blobs/"+layer.String()))

	err = e.svc.FetchBlob(ctx, repo, digest.FromString("nowhere"))
	require.True(t, errcode.IsCode(err, errcode.ErrBlobUnknown), "%v", err)

	bad := up.PushBlob(t, "app", randomBytes(64<<10)).Digest
	up.faults.set(onBlobGET(func(w http.ResponseWriter, _ *http.Request) http.ResponseWriter {
		return &corruptWriter{ResponseWriter: w}
	}))
	err = e.svc.FetchBlob(ctx, repo, bad)
	require.True(t, errcode.IsCode(err, errcode.ErrUpstreamInvalid), "%v", err)
	_, err = e.local.StatBlob(ctx, repo, bad)
	require.True(t, errcode.IsCode(err, errcode.ErrBlobUnknown), "a bad blob is not stored: %v", err)
	e.requireNoTemp()
}
