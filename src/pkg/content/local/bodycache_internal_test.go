package local

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/content/contenttest"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/storage"
)

func TestBodyCache(t *testing.T) {
	body := []byte(`{"schemaVersion":2}`)
	d := digest.FromBytes(body)
	for _, tc := range []struct {
		name   string
		max    int64
		d      digest.Digest
		body   []byte
		cached bool
	}{
		{"verified bytes", 1 << 20, d, body, true},
		{"bytes that do not hash to the digest", 1 << 20, digest.FromString("other"), body, false},
		{"sha512", 1 << 20, digest.SHA512.FromBytes(body), body, true},
		{"disabled", -1, d, body, false},
		{"larger than the cache", 4, d, body, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newBodyCache(tc.max)
			c.add(tc.d, tc.body)
			got, ok := c.get(tc.d)
			require.Equal(t, tc.cached, ok)
			if ok {
				require.Equal(t, tc.body, got)
				got[0] = 'X' // a copy: the cache keeps its own
				again, _ := c.get(tc.d)
				require.Equal(t, tc.body, again)
			}
		})
	}

	t.Run("bounded", func(t *testing.T) {
		c := newBodyCache(1000)
		for i := range 200 {
			b := bytes.Repeat([]byte{byte(i)}, 50)
			c.add(digest.FromBytes(b), b)
			require.LessOrEqual(t, c.held, int64(1000))
			_, ok := c.get(digest.FromBytes(b))
			require.True(t, ok, "the latest body is kept")
		}
	})
}

// countingFS counts Open calls on a real storage.FS.
type countingFS struct {
	*storage.FS
	opens atomic.Int64
}

func (c *countingFS) Open(ctx context.Context, d digest.Digest) (storage.Blob, error) {
	c.opens.Add(1)
	return c.FS.Open(ctx, d)
}

// TestManifestReadsFromMemory: a manifest read twice opens its stored file once.
func TestManifestReadsFromMemory(t *testing.T) {
	ctx := context.Background()
	fs, ms := contenttest.Stores(t)
	p := &meta.Project{Name: "p"}
	contenttest.CreateProjects(t, ms, p)
	cfs := &countingFS{FS: fs}
	svc := New(cfs, ms, ms, Options{})
	t.Cleanup(func() { _ = svc.Close() })
	repo := content.Repo{Project: p, Name: "p/app", Path: "app"}

	idx := []byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex + `","manifests":[]}`)
	res, err := svc.PutManifest(ctx, repo, "v1", ocispec.MediaTypeImageIndex, idx)
	require.NoError(t, err)
	for _, ref := range []string{"v1", res.Digest.String(), "v1"} {
		m, err := svc.GetManifest(ctx, repo, ref)
		require.NoError(t, err)
		require.Equal(t, idx, m.Body)
		m.Body[0] = 'X' // the caller's copy
	}
	require.Equal(t, int64(1), cfs.opens.Load())
}
