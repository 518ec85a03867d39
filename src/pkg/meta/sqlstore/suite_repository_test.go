package sqlstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// testRepositoryReads covers meta.RepositoryStore: per-project listing with filters and counts, the
// artifact list without referrers, tags by artifact and the whole-repository delete.
func testRepositoryReads(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	lib := project(t, s, "library")
	team := project(t, s, "team")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	put := func(pid int64, repo, name string, pushed time.Time, subject, tag string) *meta.Artifact {
		a := &meta.Artifact{Digest: dg(repo + name), MediaType: mtManifest, Size: 10, PushTime: pushed, Subject: subject}
		push(t, s, pid, repo, a, tag)
		return a
	}
	a1 := put(lib, "library/app", "1", t0, "", "v1")
	a2 := put(lib, "library/app", "2", t0.Add(time.Hour), "", "v2")
	push(t, s, lib, "library/app", &meta.Artifact{Digest: a2.Digest}, "latest")
	sig := put(lib, "library/app", "sig", t0.Add(2*time.Hour), a2.Digest, "")
	put(lib, "library/Web", "1", t0, "", "")
	require.NoError(t, s.LinkBlob(ctx, lib, "library/empty", dg("layer"), 5))
	put(team, "team/app", "1", t0, "", "")

	repos, total, err := s.ListProjectRepositories(ctx, lib, "", false, 0, 0)
	require.NoError(t, err)
	require.EqualValues(t, 3, total)
	names := func(rs []*meta.Repository) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	require.Equal(t, []string{"library/Web", "library/app", "library/empty"}, names(repos))
	app := repos[1]
	require.Equal(t, lib, app.ProjectID)
	require.EqualValues(t, 2, app.ArtifactCount, "the signature is not a top-level artifact")
	require.Equal(t, sig.PushTime, app.UpdateTime)
	require.EqualValues(t, 0, repos[2].ArtifactCount)
	require.Equal(t, repos[2].CreationTime, repos[2].UpdateTime)

	for _, tc := range []struct {
		name  string
		exact bool
		off   int
		lim   int
		want  []string
		total int64
	}{
		{"APP", false, 0, 0, []string{"library/app"}, 1},
		{"wE", false, 0, 0, []string{"library/Web"}, 1},
		{"library/", false, 1, 1, []string{"library/app"}, 3},
		{"library/app", true, 0, 0, []string{"library/app"}, 1},
		{"app", true, 0, 0, []string{}, 0},
		{"%", false, 0, 0, []string{}, 0},
	} {
		got, total, err := s.ListProjectRepositories(ctx, lib, tc.name, tc.exact, tc.off, tc.lim)
		require.NoError(t, err)
		require.Equal(t, tc.want, names(got), "%+v", tc)
		require.Equal(t, tc.total, total, "%+v", tc)
	}

	got, err := s.GetRepository(ctx, "library/app")
	require.NoError(t, err)
	require.Equal(t, app, got)
	_, err = s.GetRepository(ctx, "library/nope")
	require.ErrorIs(t, err, meta.ErrNotFound)

	arts, total, err := s.ListArtifacts(ctx, "library/app", 0, 0)
	require.NoError(t, err)
	require.EqualValues(t, 2, total)
	require.Equal(t, []string{a2.Digest, a1.Digest}, []string{arts[0].Digest, arts[1].Digest}, "newest first")
	arts, total, err = s.ListArtifacts(ctx, "library/app", 1, 1)
	require.NoError(t, err)
	require.EqualValues(t, 2, total)
	require.Len(t, arts, 1)
	require.Equal(t, a1.Digest, arts[0].Digest)
	_, _, err = s.ListArtifacts(ctx, "library/nope", 0, 0)
	require.ErrorIs(t, err, meta.ErrNotFound)

	checkTagsAndDelete(t, s, a1, a2, sig)
}

// checkTagsAndDelete reads the tags of lib/app's artifacts, then deletes the repository.
func checkTagsAndDelete(t *testing.T, s meta.Store, a1, a2, sig *meta.Artifact) {
	ctx := t.Context()
	tags, err := s.ListArtifactTags(ctx, []int64{a2.ID, a1.ID, sig.ID})
	require.NoError(t, err)
	var tagNames []string
	for _, tg := range tags {
		tagNames = append(tagNames, tg.Name)
		require.Positive(t, tg.ID)
		require.False(t, tg.PushTime.IsZero())
	}
	require.Equal(t, []string{"v1", "latest", "v2"}, tagNames, "by artifact ID, then name")
	require.Equal(t, a1.ID, tags[0].ArtifactID)
	tags, err = s.ListArtifactTags(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, tags)

	require.NoError(t, s.DeleteRepository(ctx, "library/app"))
	require.ErrorIs(t, s.DeleteRepository(ctx, "library/app"), meta.ErrNotFound)
	_, err = s.GetArtifact(ctx, "library/app", a1.Digest)
	require.ErrorIs(t, err, meta.ErrNotFound)
	refs, err := s.ListReferrers(ctx, "library/app", a2.Digest, "")
	require.NoError(t, err)
	require.Empty(t, refs)
	require.Zero(t, countRows(t, s, "tag"), "the tags went with the repository")
	require.EqualValues(t, 2, countRows(t, s, "artifact"), "library/Web and team/app stay")
	require.EqualValues(t, 1, countRows(t, s, "blob_link"))
}

// testProjectUsage: distinct blobs and manifests of a project, each digest once however many
// repositories hold it; other projects' content does not count.
func testProjectUsage(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	lib := project(t, s, "library")
	team := project(t, s, "team")
	empty := project(t, s, "empty")

	for _, repo := range []string{"library/app", "library/web"} { // the same layer and manifest twice
		require.NoError(t, s.LinkBlob(ctx, lib, repo, dg("layer"), 1000))
		push(t, s, lib, repo, &meta.Artifact{Digest: dg("manifest"), MediaType: mtManifest, Size: 30, PushTime: time.Now()})
	}
	require.NoError(t, s.LinkBlob(ctx, lib, "library/web", dg("config"), 200))
	push(t, s, lib, "library/web", &meta.Artifact{Digest: dg("sig"), MediaType: mtManifest, Size: 4, PushTime: time.Now(), Subject: dg("manifest")})
	require.NoError(t, s.LinkBlob(ctx, team, "team/app", dg("layer"), 1000))
	require.NoError(t, s.LinkBlob(ctx, team, "team/app", dg("other"), 7))

	for _, tc := range []struct {
		project int64
		want    int64
	}{{lib, 1000 + 30 + 200 + 4}, {team, 1007}, {empty, 0}, {999999, 0}} {
		got, err := s.ProjectUsage(ctx, tc.project)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "project %d", tc.project)
	}
	require.NoError(t, s.DeleteRepository(ctx, "library/web"))
	got, err := s.ProjectUsage(ctx, lib)
	require.NoError(t, err)
	require.EqualValues(t, 1030, got, "after removing a repository")
}
