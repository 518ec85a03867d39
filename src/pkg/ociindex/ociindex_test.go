package ociindex_test

import (
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/ociindex"
)

// marshalIndex is the reference: what encoding/json writes for the index.
func marshalIndex(t testing.TB, manifests []ocispec.Descriptor) []byte {
	b, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests})
	require.NoError(t, err)
	return b
}

const sigDigest = digest.Digest("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")

func TestAppendReferrersIndexMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name      string
		manifests []ocispec.Descriptor
	}{
		{"empty", []ocispec.Descriptor{}},
		{"plain", []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: sigDigest, Size: 1234}}},
		{"artifact type and annotations", []ocispec.Descriptor{{
			MediaType: ocispec.MediaTypeImageManifest, Digest: sigDigest, Size: 1, ArtifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
			Annotations: map[string]string{"z": "last", "a": "first", "org.opencontainers.image.created": "2026-11-27T08:00:00Z", "": "empty key"},
		}}},
		{"strings that need escaping", []ocispec.Descriptor{{
			MediaType: "a\"b\\c", Digest: "<&>", Size: -7, ArtifactType: "tab\there\nnew\rline\b\f\x00\x1f\x7f",
			Annotations: map[string]string{"html": "<script>&</script>", "lines": "\u2028\u2029", "bad utf8": "a\xffb\xc3", "unicode": "é日本🙂"},
		}}},
		{"urls and data", []ocispec.Descriptor{{MediaType: "m", Digest: sigDigest, URLs: []string{"https://a/b", "c&d"}, Data: []byte{0, 1, 2, 250}}}},
		{"several", []ocispec.Descriptor{
			{MediaType: ocispec.MediaTypeImageManifest, Digest: sigDigest, Size: 10, ArtifactType: "x/y"},
			{MediaType: ocispec.MediaTypeImageIndex, Digest: sigDigest, Size: 20, Annotations: map[string]string{}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ociindex.AppendReferrersIndex([]byte("prefix"), tt.manifests)
			require.True(t, ok)
			require.Equal(t, "prefix"+string(marshalIndex(t, tt.manifests)), string(got))
		})
	}
}

func TestAppendReferrersIndexRefusesPlatforms(t *testing.T) {
	got, ok := ociindex.AppendReferrersIndex([]byte("x"), []ocispec.Descriptor{{MediaType: "m", Platform: &ocispec.Platform{OS: "linux"}}})
	require.False(t, ok)
	require.Equal(t, "x", string(got))
}

// FuzzAppendReferrersIndex: for any strings, the hand-written encoder writes what encoding/json writes.
func FuzzAppendReferrersIndex(f *testing.F) {
	f.Add("application/vnd.oci.image.manifest.v1+json", "sha256:abc", int64(12), "a/b", "k", "v", []byte{1})
	f.Add("<>&\"\\", "\u2028", int64(-1), "\x00\xff", "\t", "\xe2\x80", []byte(nil))
	f.Fuzz(func(t *testing.T, mediaType, dgst string, size int64, artifactType, key, value string, data []byte) {
		d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.Digest(dgst), Size: size, ArtifactType: artifactType,
			Annotations: map[string]string{key: value, value: key}, URLs: []string{value}, Data: data}
		got, ok := ociindex.AppendReferrersIndex(nil, []ocispec.Descriptor{d, {MediaType: key}})
		require.True(t, ok)
		require.Equal(t, string(marshalIndex(t, []ocispec.Descriptor{d, {MediaType: key}})), string(got))
	})
}
