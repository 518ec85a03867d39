package upstream_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// TestClientError: the one map from upstream failures to the codes a client of Berth sees (proxy pulls,
// tag lists and referrers all answer through it). The messages never quote the cause.
func TestClientError(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.5:443: connect: connection refused")
	kind := func(k upstream.Kind, status int) error {
		return fmt.Errorf("list referrers: %w", &upstream.Error{Kind: k, Status: status, Err: cause})
	}
	tests := []struct {
		name   string
		err    error
		want   errcode.Code
		status int
	}{
		{"not found: the caller's code", kind(upstream.NotFound, 404), errcode.ErrManifestUnknown, http.StatusNotFound},
		{"rate limited: 429, not 503", kind(upstream.RateLimited, 429), errcode.ErrTooManyRequests, http.StatusTooManyRequests},
		{"unauthorized", kind(upstream.Unauthorized, 401), errcode.ErrUpstreamUnavailable, http.StatusServiceUnavailable},
		{"unavailable", kind(upstream.Unavailable, 502), errcode.ErrUpstreamUnavailable, http.StatusServiceUnavailable},
		{"invalid", kind(upstream.Invalid, 200), errcode.ErrUpstreamInvalid, http.StatusBadGateway},
		{"unsupported is unavailable", kind(upstream.Unsupported, 405), errcode.ErrUpstreamUnavailable, http.StatusServiceUnavailable},
		{"untyped is unavailable", cause, errcode.ErrUpstreamUnavailable, http.StatusServiceUnavailable},
		{"an errcode error passes through", fmt.Errorf("x: %w", errcode.ErrNameInvalid.WithMessage("bad")), errcode.ErrNameInvalid, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := errcode.As(upstream.ClientError(tc.err, errcode.ErrManifestUnknown))
			require.NotNil(t, e)
			require.Equal(t, tc.want, e.Code)
			require.Equal(t, tc.status, e.Code.Status)
			require.NotContains(t, e.Message, "10.0.0.5", "no cause in the message")
		})
	}
	require.NoError(t, upstream.ClientError(nil, errcode.ErrManifestUnknown))
}
