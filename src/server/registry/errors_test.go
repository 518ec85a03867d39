package registry_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
)

// errInternal is what a failing dependency says: it names an internal address.
var errInternal = errors.New("dial tcp 10.66.77.88:5432: connect: connection refused")

// failingService fails the calls it overrides with errInternal.
type failingService struct{ content.Service }

func (failingService) GetManifest(context.Context, content.Repo, string) (*content.Manifest, error) {
	return nil, errInternal
}
func (failingService) StatBlob(context.Context, content.Repo, digest.Digest) (int64, error) {
	return 0, errInternal
}
func (failingService) StartUpload(context.Context, content.Repo) (string, error) {
	return "", errInternal
}
func (failingService) ListTags(context.Context, content.Repo, string, int) ([]string, error) {
	return nil, errInternal
}

// TestInternalErrorsAreGeneric: a failure inside Berth is 500 UNKNOWN with a generic message; the
// cause, which names internal addresses, never reaches the client.
func TestInternalErrorsAreGeneric(t *testing.T) {
	e := newEnv(t, envOpts{wrap: func(s content.Service) content.Service { return failingService{s} }})
	d := "sha256:" + "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
	for _, r := range []req{
		{method: http.MethodGet, path: "/v2/private/app/manifests/v1"},
		{method: http.MethodHead, path: "/v2/private/app/manifests/v1"},
		{method: http.MethodHead, path: "/v2/private/app/blobs/" + d},
		{method: http.MethodPost, path: "/v2/private/app/blobs/uploads/"},
		{method: http.MethodGet, path: "/v2/private/app/tags/list"},
	} {
		got := e.do(r)
		require.Equal(t, http.StatusInternalServerError, got.status, "%s %s", r.method, r.path)
		require.NotContains(t, string(got.body), "10.66.77.88")
		require.NotContains(t, string(got.body), "dial tcp")
		if r.method != http.MethodHead {
			require.Equal(t, "UNKNOWN", errorCode(t, got.body))
		}
	}
}
