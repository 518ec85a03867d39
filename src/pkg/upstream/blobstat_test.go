package upstream_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

// StatBlob answers with one HEAD and downloads nothing, against real registries.
func TestStatBlobAgainstRealRegistries(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"distribution", "ggcr"} {
		t.Run(kind, func(t *testing.T) {
			var mu sync.Mutex
			methods := map[string]int{}
			count := registrytest.WithWrapper(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					methods[r.Method]++
					mu.Unlock()
					next.ServeHTTP(w, r)
				})
			})
			up := registrytest.NewDistribution(t, count)
			if kind == "ggcr" {
				up = registrytest.NewGGCR(t, true, count)
			}
			img := up.PushImage(t, "team/app", "v1")
			layer := img.Layers[0]
			c, err := upstream.NewClient(upstream.Endpoint{URL: up.URL}, upstream.Options{})
			require.NoError(t, err)
			mu.Lock()
			clear(methods)
			mu.Unlock()

			size, err := c.StatBlob(ctx, "team/app", layer.Digest)
			require.NoError(t, err)
			require.Equal(t, layer.Size, size)
			_, err = c.StatBlob(ctx, "team/app", digest.FromString("absent"))
			require.Error(t, err)
			require.True(t, upstream.IsNotFound(err), "%v", err)
			mu.Lock()
			defer mu.Unlock()
			require.Zero(t, methods[http.MethodGet], "nothing is downloaded")
			require.Positive(t, methods[http.MethodHead])
		})
	}
}

// A digest header naming another blob is an invalid answer; no Content-Length is size -1.
func TestStatBlobChecksTheAnswer(t *testing.T) {
	want := digest.FromString("wanted")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/":
		case "/v2/other/blobs/" + want.String():
			w.Header().Set("Docker-Content-Digest", digest.FromString("other").String())
			w.Header().Set("Content-Length", strconv.Itoa(6))
		case "/v2/nolength/blobs/" + want.String():
			w.(http.Flusher).Flush()
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := upstream.NewClient(upstream.Endpoint{URL: srv.URL}, upstream.Options{})
	require.NoError(t, err)
	_, err = c.StatBlob(context.Background(), "other", want)
	var e *upstream.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, upstream.Invalid, e.Kind)
	size, err := c.StatBlob(context.Background(), "nolength", want)
	require.NoError(t, err)
	require.EqualValues(t, -1, size)
}
