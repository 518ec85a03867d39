package admin

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

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
