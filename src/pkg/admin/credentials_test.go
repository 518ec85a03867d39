package admin

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/secret"
)

// recordingPinger records the plaintext secret sent to each URL and fails for the URLs in fail.
type recordingPinger struct {
	sent map[string]string
	fail map[string]error
}

func (p *recordingPinger) PingRegistry(_ context.Context, r meta.Registry) error {
	p.sent[r.URL] = r.AccessSecret
	return p.fail[r.URL]
}

func newCredentials(t *testing.T) (*Credentials, *recordingPinger) {
	t.Helper()
	box, err := secret.NewBox(bytes.Repeat([]byte{7}, secret.KeySize))
	require.NoError(t, err)
	p := &recordingPinger{sent: map[string]string{}, fail: map[string]error{}}
	c, err := NewCredentials(box, p, nil)
	require.NoError(t, err)
	return c, p
}

func TestCredentialsPrepareSealsAndOpens(t *testing.T) {
	c, p := newCredentials(t)
	r := &meta.Registry{Name: " up ", Type: "harbor", URL: "https://up.example/"}
	require.NoError(t, c.Prepare(context.Background(), r, "pw"))
	require.Equal(t, "up", r.Name)
	require.Equal(t, "https://up.example", r.URL)
	require.Equal(t, CredentialBasic, r.CredentialType)
	require.Equal(t, "pw", p.sent["https://up.example"], "checked with the plaintext")
	require.True(t, secret.IsSealed(r.AccessSecret), "stored sealed")
	plain, err := c.Open(r)
	require.NoError(t, err)
	require.Equal(t, "pw", plain)

	p.fail["https://down.example"] = errors.New("dial tcp 10.0.0.1:443 with pw")
	down := &meta.Registry{Name: "d", Type: "harbor", URL: "https://down.example"}
	err = c.Prepare(context.Background(), down, "pw")
	require.True(t, errcode.IsCode(err, errcode.ErrBadRequest))
	require.Equal(t, "the registry is unhealthy: the registry could not be checked", errcode.As(err).Message)
	require.Empty(t, down.AccessSecret, "nothing sealed for a registry that failed its check")
}

func TestCredentialsPrepareUpdate(t *testing.T) {
	ctx := context.Background()
	c, p := newCredentials(t)
	old := &meta.Registry{ID: 1, Name: "up", Type: "harbor", URL: "https://up.example"}
	require.NoError(t, c.Prepare(ctx, old, "stored"))
	newSecret := "fresh"
	cases := []struct {
		name      string
		change    func(r *meta.Registry)
		secret    *string
		changed   bool
		wantErr   string
		wantSent  string // the plaintext the upstream got, "" when not checked
		sentToURL string
	}{
		{"description only", func(r *meta.Registry) { r.Description = "d" }, nil, false, "", "", ""},
		{"same url, key changed", func(r *meta.Registry) { r.AccessKey = "k" }, nil, true, "", "stored", "https://up.example"},
		{"another url without a secret", func(r *meta.Registry) { r.URL = "https://other.example" }, nil, true,
			"credential required when the URL changes", "", "https://other.example"},
		{"another url with a secret", func(r *meta.Registry) { r.URL = "https://new.example" }, &newSecret, true, "", "fresh", "https://new.example"},
		{"invalid url", func(r *meta.Registry) { r.URL = "ftp://x" }, nil, false, "is invalid", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clear(p.sent)
			next := *old
			tc.change(&next)
			changed, err := c.PrepareUpdate(ctx, old, &next, tc.secret)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.Empty(t, p.sent, "no upstream was contacted")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.changed, changed)
			if tc.wantSent == "" {
				require.Empty(t, p.sent)
				return
			}
			require.Equal(t, map[string]string{tc.sentToURL: tc.wantSent}, p.sent)
		})
	}
}

func TestCredentialsPing(t *testing.T) {
	c, p := newCredentials(t)
	err := c.Ping(context.Background(), &meta.Registry{}, &meta.Registry{Type: "harbor"}, nil)
	require.ErrorContains(t, err, "type or url cannot be empty")
	require.NoError(t, c.Ping(context.Background(), &meta.Registry{}, &meta.Registry{Type: "harbor", URL: "https://p.example"}, nil))
	require.Equal(t, map[string]string{"https://p.example": ""}, p.sent)
}
