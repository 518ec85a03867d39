package registry

import (
	"context"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// mountCounter is a content.Service that only mounts, counting the calls.
type mountCounter struct {
	content.Service // nil: any other call panics
	mounts          int
}

func (m *mountCounter) MountBlob(_ context.Context, _, _ content.Repo, _ digest.Digest) (int64, error) {
	m.mounts++
	return 1, nil
}

// projectMap resolves projects from a map.
type projectMap map[string]*meta.Project

func (p projectMap) GetProjectByName(_ context.Context, name string) (*meta.Project, error) {
	if pr, ok := p[name]; ok {
		return pr, nil
	}
	return nil, fmt.Errorf("project %s: %w", name, meta.ErrNotFound)
}

// TestMountNeedsPullOnSource covers the rule that only admins can reach through the HTTP API today: a
// caller who may push to the target but not pull the source gets a plain upload, and the source is never
// touched.
func TestMountNeedsPullOnSource(t *testing.T) {
	projects := projectMap{
		"private": {ID: 1, Name: "private"},
		"public":  {ID: 2, Name: "public", Metadata: map[string]string{meta.MetaPublic: "true"}},
		"target":  {ID: 3, Name: "target"},
	}
	d := digest.FromString("blob")
	for _, tc := range []struct {
		name    string
		who     auth.Principal
		from    string
		mounted bool
	}{
		{"user without pull on a private source", auth.Principal{Name: "bob"}, "private/src", false},
		{"anonymous on a private source", auth.Principal{}, "private/src", false},
		{"user on a public source", auth.Principal{Name: "bob"}, "public/src", true},
		{"admin on a private source", auth.Principal{Name: "admin", Admin: true}, "private/src", true},
		{"user without pull on the target, without from", auth.Principal{Name: "bob"}, "", false},
		{"admin without from", auth.Principal{Name: "admin", Admin: true}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &mountCounter{}
			h := New(svc, projects, auth.NewAuthenticator("x"), nil, Options{})
			req := &request{who: tc.who, repo: content.Repo{Project: projects["target"], Name: "target/dst", Path: "dst"}}
			mounted, got, err := h.tryMount(context.Background(), req, d.String(), tc.from)
			require.NoError(t, err)
			require.Equal(t, tc.mounted, mounted)
			if tc.mounted {
				require.Equal(t, d, got)
				require.Equal(t, 1, svc.mounts)
			} else {
				require.Zero(t, svc.mounts)
			}
		})
	}
}
