package referrers

import (
	"fmt"
	"hash/maphash"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream"
)

func testEntry(t testing.TB, n int) (*entry, []byte) {
	e := &entry{storedAt: time.Unix(1_700_000_000, 0).UTC()}
	e.manifests = []ocispec.Descriptor{}
	for i := range n {
		e.manifests = append(e.manifests, ocispec.Descriptor{
			MediaType:    ocispec.MediaTypeImageManifest,
			ArtifactType: "application/vnd.example+json",
			Digest:       digest.FromString(fmt.Sprint("referrer", i)),
			Size:         int64(100 + i),
			Annotations:  map[string]string{"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
		})
	}
	b, err := encode(e, upstream.SourceAPI.String())
	require.NoError(t, err)
	return e, b
}

func TestDecodedEntries(t *testing.T) {
	want, b := testEntry(t, 3)
	_, other := testEntry(t, 4)
	tests := []struct {
		name string
		run  func(t *testing.T, d *decodedEntries)
	}{
		{"same bytes give the same decoded entry", func(t *testing.T, d *decodedEntries) {
			e1, err := d.decode(b)
			require.NoError(t, err)
			require.Equal(t, want.manifests, e1.manifests)
			require.Equal(t, want.storedAt, e1.storedAt)
			e2, err := d.decode(append([]byte(nil), b...))
			require.NoError(t, err)
			require.Same(t, e1, e2)
		}},
		{"different bytes decode apart", func(t *testing.T, d *decodedEntries) {
			e1, err := d.decode(b)
			require.NoError(t, err)
			e2, err := d.decode(other)
			require.NoError(t, err)
			require.Len(t, e1.manifests, 3)
			require.Len(t, e2.manifests, 4)
		}},
		{"a hash collision is caught by the byte compare", func(t *testing.T, d *decodedEntries) {
			// Plant the entry of b under other's hash, as a colliding hash would.
			d.m[maphash.Bytes(d.seed, other)] = decodedEntry{e: want, encoded: b}
			d.size = len(b)
			e, err := d.decode(other)
			require.NoError(t, err)
			require.Len(t, e.manifests, 4, "other's own entry, not the planted one")
			require.Len(t, d.m, 1)
			require.Equal(t, len(other), d.size)
		}},
		{"corrupt bytes fail every time", func(t *testing.T, d *decodedEntries) {
			bad := []byte(`{"not":"an entry"}`)
			for range 2 {
				_, err := d.decode(bad)
				require.Error(t, err)
			}
			require.Empty(t, d.m)
		}},
		{"bounded by count", func(t *testing.T, d *decodedEntries) {
			d.maxCount = 1
			_, err := d.decode(b)
			require.NoError(t, err)
			_, err = d.decode(other)
			require.NoError(t, err)
			require.Len(t, d.m, 1)
			require.Equal(t, len(other), d.size)
		}},
		{"bounded by size", func(t *testing.T, d *decodedEntries) {
			d.maxSize = len(other)
			_, err := d.decode(b)
			require.NoError(t, err)
			_, err = d.decode(other)
			require.NoError(t, err)
			require.Len(t, d.m, 1)
			require.LessOrEqual(t, d.size, d.maxSize)
		}},
		{"nil memo decodes", func(t *testing.T, _ *decodedEntries) {
			var d *decodedEntries
			e, err := d.decode(b)
			require.NoError(t, err)
			require.Len(t, e.manifests, 3)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newDecodedEntries(decodedMaxCount, decodedMaxSize)) })
	}
}

// BenchmarkDecodeEntry compares decoding a cached entry of 20 referrers every time ("decode", as
// before) with the memo ("memo").
func BenchmarkDecodeEntry(b *testing.B) {
	_, enc := testEntry(b, 20)
	d := newDecodedEntries(decodedMaxCount, decodedMaxSize)
	for name, fn := range map[string]func([]byte) (*entry, error){"decode": decode, "memo": d.decode} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fn(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
