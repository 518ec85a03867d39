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

func TestValidateProjectName(t *testing.T) {
	for name, ok := range map[string]bool{"a": true, "my-proj.1": true, "": false, "Up": false, "a--b": false, "-a": false} {
		require.Equal(t, ok, ValidateProjectName(name) == nil, name)
	}
}

func TestNewProject(t *testing.T) {
	str := func(s string) *string { return &s }
	i64 := func(n int64) *int64 { return &n }
	yes := true
	cases := []struct {
		name string
		req  ProjectRequest
		want *meta.Project // nil: refused
	}{
		{"defaults", ProjectRequest{ProjectName: str("lib")},
			&meta.Project{Name: "lib", StorageLimit: -1, Metadata: map[string]string{meta.MetaPublic: "false"}}},
		{"legacy public, proxy, limit", ProjectRequest{ProjectName: str("hub"), Public: &yes, RegistryID: i64(3), StorageLimit: i64(10)},
			&meta.Project{Name: "hub", RegistryID: 3, StorageLimit: 10, Metadata: map[string]string{meta.MetaPublic: "true"}}},
		{"metadata public wins", ProjectRequest{ProjectName: str("p"), Public: &yes, Metadata: map[string]*string{meta.MetaPublic: str("0")}},
			&meta.Project{Name: "p", StorageLimit: -1, Metadata: map[string]string{meta.MetaPublic: "false"}}},
		{"no name", ProjectRequest{}, nil},
		{"negative registry", ProjectRequest{ProjectName: str("p"), RegistryID: i64(-1)}, nil},
		{"bad limit", ProjectRequest{ProjectName: str("p"), StorageLimit: i64(-2)}, nil},
		{"bad seconds", ProjectRequest{ProjectName: str("p"), Metadata: map[string]*string{meta.MetaProxyReferrerCacheSecond: str("604801")}}, nil},
	}
	for _, tc := range cases {
		got, err := NewProject(tc.req)
		if tc.want == nil {
			require.True(t, errcode.IsCode(err, errcode.ErrBadRequest), "%s: %v", tc.name, err)
			continue
		}
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
}

func TestUserRules(t *testing.T) {
	for name, ok := range map[string]bool{"alice": true, "a.b-c_d@x": true, "": false, "a b": false, "a,b": false, "a~b": false} {
		require.Equal(t, ok, ValidateUserName(name) == nil, name)
	}
	_, err := PasswordHash("short")
	require.True(t, errcode.IsCode(err, errcode.ErrBadRequest), "%v", err)
	hash, err := PasswordHash("Harbor12345")
	require.NoError(t, err)
	require.NotContains(t, hash, "Harbor12345")
}

func TestQuotaStorageAndMemberRole(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		hard map[string]*int64
		want int64 // 0: refused
	}{
		{map[string]*int64{"storage": n(-1)}, -1},
		{map[string]*int64{"storage": n(2000)}, 2000},
		{map[string]*int64{"storage": n(0)}, 0},
		{map[string]*int64{"storage": n(-2)}, 0},
		{map[string]*int64{"count": n(5), "storage": n(1)}, 0},
		{map[string]*int64{}, 0},
	} {
		got, err := QuotaStorage(tc.hard)
		if tc.want == 0 {
			require.True(t, errcode.IsCode(err, errcode.ErrBadRequest), "%v", tc.hard)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
	r, err := MemberRole(2)
	require.NoError(t, err)
	require.Equal(t, meta.Role(2), r)
	_, err = MemberRole(9)
	require.True(t, errcode.IsCode(err, errcode.ErrBadRequest))
}
