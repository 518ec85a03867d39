package upstream_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/clocktest"
	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

func TestMain(m *testing.M) { registrytest.Main(m) }

// clock is a settable test clock.
type clock = clocktest.Clock

func newClock() *clock { return clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) }

// counter counts requests by kind of path ("referrers", "manifests", "tags", "blobs", "base").
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func newCounter() *counter { return &counter{n: map[string]int{}} }

func (c *counter) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := "base"
		for _, k := range []string{"referrers", "manifests", "tags", "blobs"} {
			if strings.Contains(r.URL.Path, "/"+k+"/") {
				kind = k
			}
		}
		c.mu.Lock()
		c.n[kind]++
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (c *counter) Get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

// newClient builds a client for url with test defaults.
func newClient(t *testing.T, ep upstream.Endpoint, opts upstream.Options) *upstream.Client {
	t.Helper()
	c, err := upstream.NewClient(ep, opts)
	require.NoError(t, err)
	return c
}

// requireKind asserts err is an *upstream.Error of kind k.
func requireKind(t *testing.T, err error, k upstream.Kind) *upstream.Error {
	t.Helper()
	require.Error(t, err)
	var e *upstream.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, k, e.Kind, "error: %v", err)
	return e
}

// requireBody reads rc whole, closes it and checks that it held want.
func requireBody(t *testing.T, rc io.ReadCloser, want []byte) {
	t.Helper()
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, want, got)
}
