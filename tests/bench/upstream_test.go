package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUpstreamHandlerServesAndCounts(t *testing.T) {
	u := NewUpstreamHandler()
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	ctx := context.Background()
	reg := &Registry{URL: srv.URL, Client: srv.Client()}
	c := NewContent(5, 2*genBlock+3)
	d := c.Digest()
	require.NoError(t, reg.RegisterBlob(ctx, BlobSpec{Digest: d, Seed: c.Seed, Size: c.Size}))
	all := c.Bytes()
	blobURL := srv.URL + "/v2/any/repo/blobs/" + d.String()

	tests := []struct {
		name       string
		method     string
		url        string
		rng        string
		wantStatus int
		wantBody   []byte
	}{
		{"ping", http.MethodGet, srv.URL + "/v2/", "", http.StatusOK, []byte("{}")},
		{"whole blob", http.MethodGet, blobURL, "", http.StatusOK, all},
		{"head", http.MethodHead, blobURL, "", http.StatusOK, nil},
		{"open range", http.MethodGet, blobURL, "bytes=1048570-", http.StatusPartialContent, all[1048570:]},
		{"closed range", http.MethodGet, blobURL, "bytes=10-19", http.StatusPartialContent, all[10:20]},
		{"range past the end", http.MethodGet, blobURL, "bytes=99999999-", http.StatusRequestedRangeNotSatisfiable, nil},
		{"unknown blob", http.MethodGet, srv.URL + "/v2/r/blobs/sha256:" + "00000000000000000000000000000000000000000000000000000000000000ab", "", http.StatusNotFound, nil},
		{"manifests are not served", http.MethodGet, srv.URL + "/v2/r/manifests/latest", "", http.StatusNotFound, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, nil)
			require.NoError(t, err)
			if tt.rng != "" {
				req.Header.Set("Range", tt.rng)
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			if tt.wantBody != nil {
				require.Equal(t, tt.wantBody, body)
			}
		})
	}

	st, err := reg.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(len(all)+len(all)-1048570+10), st.BlobBytes)
	require.Equal(t, int64(3), st.BlobGets)
	require.Equal(t, int64(len(tests)), st.Requests)
	require.NoError(t, reg.ResetStats(ctx))
	st, err = reg.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, Stats{}, st)
}

func TestCountingHandler(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("12345")) })
	srv := httptest.NewServer(NewCountingHandler(inner))
	t.Cleanup(srv.Close)
	for _, p := range []string{"/v2/a/b/blobs/sha256:x", "/v2/a/referrers/sha256:y", "/v2/a/manifests/v1", "/v2/"} {
		resp, err := srv.Client().Get(srv.URL + p)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	st, err := (&Registry{URL: srv.URL, Client: srv.Client()}).Stats(context.Background())
	require.NoError(t, err)
	require.Equal(t, Stats{Requests: 4, BlobGets: 1, BlobBytes: 5, Referrers: 1}, st)
}

func TestPathKindAndRange(t *testing.T) {
	for p, want := range map[string]string{
		"/v2/a/blobs/sha256:1": "blobs", "/v2/a/b/c/manifests/v1": "manifests", "/v2/p/r/referrers/sha256:2": "referrers",
		"/v2/": "", "/v2/a/tags/list": "", "/other/blobs/x": "", "/v2/blobs/x": "",
	} {
		require.Equal(t, want, pathKind(p), p)
	}
	for _, tt := range []struct {
		h          string
		start, end int64
		ok         bool
	}{
		{"bytes=0-", 0, 100, true}, {"bytes=5-9", 5, 10, true}, {"bytes=5-500", 5, 100, true},
		{"bytes=100-", 0, 0, false}, {"bytes=9-5", 0, 0, false}, {"bytes=0-1,3-4", 0, 0, false}, {"items=0-", 0, 0, false},
	} {
		s, e, ok := parseSimpleRange(tt.h, 100)
		require.Equal(t, tt.ok, ok, tt.h)
		if ok {
			require.Equal(t, [2]int64{tt.start, tt.end}, [2]int64{s, e}, tt.h)
		}
	}
}

// Single cold pulls hash what they receive: an upstream whose bytes do not match the digest in the
// URL fails the pull.
func TestDirectPullChecksTheDigest(t *testing.T) {
	u := NewUpstreamHandler()
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	ctx := context.Background()
	reg := &Registry{URL: srv.URL, Client: srv.Client()}
	good := NewContent(11, 3*genBlock+5)
	liar := NewContent(12, good.Size)
	require.NoError(t, reg.RegisterBlob(ctx, BlobSpec{Digest: good.Digest(), Seed: good.Seed, Size: good.Size}))
	require.NoError(t, reg.RegisterBlob(ctx, BlobSpec{Digest: liar.Digest(), Seed: good.Seed, Size: good.Size})) // serves good's bytes
	r := &Runner{}

	p, err := r.directPull(ctx, reg, srv.URL+"/v2/r/blobs/"+good.Digest().String(), good.Size)
	require.NoError(t, err)
	require.Equal(t, good.Size, p.Bytes)
	require.Equal(t, good.Size, p.UpstreamBytes)

	_, err = r.directPull(ctx, reg, srv.URL+"/v2/r/blobs/"+liar.Digest().String(), good.Size)
	require.ErrorContains(t, err, "hashing to "+good.Digest().String())

	p, got, err := timedGet(ctx, srv.URL+"/v2/r/blobs/"+good.Digest().String(), good.Size, nil)
	require.NoError(t, err)
	require.Empty(t, got, "no hash asked")
	require.Equal(t, good.Size, p.Bytes)
}
