package errcode_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
)

// dialError is what the upstream client returns when an upstream cannot be reached: its text names the
// internal address.
func dialError() error {
	op := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 443}, Err: errors.New("connect: connection refused")}
	return fmt.Errorf("upstream registry: unavailable: Get \"https://10.0.0.5/v2/\": %w", op)
}

func serveBody(t *testing.T, err error) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	errcode.Serve(w, httptest.NewRequest(http.MethodGet, "/v2/p/r/manifests/latest", nil), nil, err)
	var body struct {
		Errors []struct {
			Code, Message string
		}
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	require.Len(t, body.Errors, 1)
	return w.Code, body.Errors[0].Message
}

// TestServeKeepsCausesOutOfServerErrors: a 5xx message that quotes its cause, or a part of it, is
// replaced by the code's default; 4xx messages and 5xx messages that do not quote are sent as written.
func TestServeKeepsCausesOutOfServerErrors(t *testing.T) {
	cause := dialError()
	var op *net.OpError
	require.ErrorAs(t, cause, &op)
	for _, tc := range []struct {
		name   string
		err    error
		status int
		want   string
	}{
		{"quotes the cause", errcode.ErrUpstreamUnavailable.Wrap(cause, "the upstream registry is unavailable and no referrers are cached: %v", cause),
			503, errcode.ErrUpstreamUnavailable.Message},
		{"quotes a wrapped part", errcode.ErrUpstreamInvalid.Wrap(cause, "bad answer from %v", op),
			502, errcode.ErrUpstreamInvalid.Message},
		{"quotes a joined part", errcode.ErrUpstreamUnavailable.Wrap(errors.Join(errors.New("first failure"), op), "failed: %v", op),
			503, errcode.ErrUpstreamUnavailable.Message},
		{"generic message kept", errcode.ErrUpstreamUnavailable.Wrap(cause, "the upstream registry of project %q is unavailable", "hub"),
			503, `the upstream registry of project "hub" is unavailable`},
		{"not an errcode error", cause, 500, "internal error"},
		{"client error kept", errcode.ErrDigestInvalid.WithMessage("digest %q: %v", "sha256:x", errors.New("invalid checksum digest length")),
			400, `digest "sha256:x": invalid checksum digest length`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, msg := serveBody(t, tc.err)
			require.Equal(t, tc.status, status)
			require.Equal(t, tc.want, msg)
			if status >= 500 {
				require.False(t, strings.Contains(msg, "10.0.0.5") || strings.Contains(msg, "dial"), "leaked: %s", msg)
			}
		})
	}
}
