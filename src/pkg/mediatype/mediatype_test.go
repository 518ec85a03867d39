package mediatype_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/mediatype"
)

func TestOf(t *testing.T) {
	for _, tc := range []struct{ ct, want string }{
		{"", ""},
		{"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.index.v1+json"},
		{"Application/JSON; charset=utf-8", "application/json"},
		{"application/vnd.docker.distribution.manifest.v2+json;", "application/vnd.docker.distribution.manifest.v2+json"},
		{" Text/Plain ; bad=\"", "text/plain"}, // unparsable parameters: the part before ';'
	} {
		require.Equal(t, tc.want, mediatype.Of(tc.ct), "Content-Type %q", tc.ct)
	}
}
