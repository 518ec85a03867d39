package reference

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"
)

func TestParseV2Path(t *testing.T) {
	d256 := digest.Digest("sha256:" + hex64)
	d512 := digest.Digest("sha512:" + hex128)
	const id = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		path string
		want Route
	}{
		{"/v2/", Route{Kind: KindBase}},
		{"/v2", Route{Kind: KindBase}},
		{"/v2/_catalog", Route{Kind: KindCatalog}},
		{"/v2/library/busybox/tags/list", Route{Kind: KindTags, Name: "library/busybox"}},
		{"/v2/p/a/b/tags/list", Route{Kind: KindTags, Name: "p/a/b"}},
		{"/v2/p/a/manifests/latest", Route{Kind: KindManifest, Name: "p/a", Tag: "latest"}},
		{"/v2/p/a/manifests/" + string(d256), Route{Kind: KindManifest, Name: "p/a", Digest: d256}},
		{"/v2/p/a/manifests/" + string(d512), Route{Kind: KindManifest, Name: "p/a", Digest: d512}},
		{"/v2/p/a/blobs/" + string(d256), Route{Kind: KindBlob, Name: "p/a", Digest: d256}},
		{"/v2/p/a/blobs/uploads/", Route{Kind: KindUploadStart, Name: "p/a"}},
		{"/v2/p/a/blobs/uploads", Route{Kind: KindUploadStart, Name: "p/a"}},
		{"/v2/p/a/blobs/uploads/" + id, Route{Kind: KindUpload, Name: "p/a", UploadID: id}},
		{"/v2/p/a/blobs/uploads/3f1e8d1c-5c1d-4b8e-9d1a-1f2e3d4c5b6a", Route{Kind: KindUpload, Name: "p/a", UploadID: "3f1e8d1c-5c1d-4b8e-9d1a-1f2e3d4c5b6a"}},
		{"/v2/p/a/referrers/" + string(d256), Route{Kind: KindReferrers, Name: "p/a", Digest: d256}},
		// Names whose components look like route markers.
		{"/v2/p/manifests/manifests/latest", Route{Kind: KindManifest, Name: "p/manifests", Tag: "latest"}},
		{"/v2/p/blobs/manifests/blobs", Route{Kind: KindManifest, Name: "p/blobs", Tag: "blobs"}},
		{"/v2/p/tags/tags/list", Route{Kind: KindTags, Name: "p/tags"}},
		{"/v2/p/a/manifests/list", Route{Kind: KindManifest, Name: "p/a", Tag: "list"}},
		{"/v2/p/blobs/uploads/blobs/uploads/", Route{Kind: KindUploadStart, Name: "p/blobs/uploads"}},
		{"/v2/p/blobs/blobs/uploads/" + id, Route{Kind: KindUpload, Name: "p/blobs", UploadID: id}},
		{"/v2/p/a/blobs/uploads/uploads", Route{Kind: KindUpload, Name: "p/a", UploadID: "uploads"}},
		{"/v2/p/referrers/referrers/" + string(d256), Route{Kind: KindReferrers, Name: "p/referrers", Digest: d256}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := ParseV2Path(tt.path)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			again, err := ParseV2Path(got.Path())
			require.NoError(t, err)
			require.Equal(t, got, again)
		})
	}
}

func TestParseV2PathErrors(t *testing.T) {
	d256 := "sha256:" + hex64
	tests := []struct {
		path    string
		wantErr error
	}{
		{"", ErrNotFound},
		{"/", ErrNotFound},
		{"/v1/", ErrNotFound},
		{"/v2x", ErrNotFound},
		{"v2/", ErrNotFound},
		{"/v2/_catalog/", ErrNotFound},
		{"/v2/p/a", ErrNotFound},
		{"/v2/p/a/", ErrNotFound},
		{"/v2/p/a/tags", ErrNotFound},
		{"/v2/p/a/tags/list/", ErrNotFound},
		{"/v2/p/a/tags/all", ErrNotFound},
		{"/v2/p/a/manifests/", ErrNotFound},
		{"/v2/p/a/blobs/", ErrNotFound},
		{"/v2/p/a/uploads/x", ErrNotFound},
		{"/v2/p/a/unknown/x", ErrNotFound},
		{"/v2/manifests/latest", ErrNotFound},
		{"/v2//manifests/latest", ErrNotFound},
		{"/v2/blobs/uploads/", ErrNotFound},
		{"/v2//blobs/uploads/", ErrNotFound},
		{"/v2/blobs/uploads/x", ErrNotFound},
		{"/v2/tags/list", ErrNotFound},

		{"/v2/busybox/manifests/latest", ErrNameNoProject},
		{"/v2/busybox/tags/list", ErrNameNoProject},
		{"/v2/busybox/blobs/uploads/", ErrNameNoProject},
		{"/v2/Library/busybox/manifests/latest", ErrNameInvalid},
		{"/v2/p//a/manifests/latest", ErrNameInvalid},
		{"/v2/p/../a/manifests/latest", ErrNameInvalid},
		{"/v2/p/a_/blobs/" + d256, ErrNameInvalid},
		{"/v2/p/" + strings.Repeat("a", 300) + "/tags/list", ErrNameInvalid},
		{"/v2/Bad/name/manifests/:::", ErrNameInvalid}, // name is checked first

		{"/v2/p/a/manifests/.latest", ErrTagInvalid},
		{"/v2/p/a/manifests/" + strings.Repeat("t", 129), ErrTagInvalid},
		{"/v2/p/a/manifests/sha256:abc", ErrDigestInvalid},
		{"/v2/p/a/manifests/sha384:" + strings.Repeat("a", 96), ErrDigestUnsupported},
		{"/v2/p/a/blobs/latest", ErrDigestInvalid},
		{"/v2/p/a/blobs/sha256:" + strings.ToUpper(hex64), ErrDigestInvalid},
		{"/v2/p/a/referrers/latest", ErrDigestInvalid},
		{"/v2/p/a/blobs/uploads/..", ErrUploadIDInvalid},
		{"/v2/p/a/blobs/uploads/.hidden", ErrUploadIDInvalid},
		{"/v2/p/a/blobs/uploads/a%2fb", ErrUploadIDInvalid},
		{"/v2/p/a/blobs/uploads/" + strings.Repeat("a", 129), ErrUploadIDInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r, err := ParseV2Path(tt.path)
			require.ErrorIs(t, err, tt.wantErr)
			require.Equal(t, Route{}, r)
		})
	}
}

func TestKindString(t *testing.T) {
	require.Equal(t, "manifest", KindManifest.String())
	require.Equal(t, "upload_start", KindUploadStart.String())
	require.Equal(t, "referrers", KindReferrers.String())
	require.Equal(t, "unknown", Kind(200).String())
}

func TestRouteReference(t *testing.T) {
	require.Equal(t, "latest", Route{Tag: "latest"}.Reference())
	require.Equal(t, "sha256:"+hex64, Route{Digest: digest.Digest("sha256:" + hex64)}.Reference())
	require.Equal(t, "", Route{Kind: 99}.Path())
}
