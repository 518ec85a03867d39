package sqlstore

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// project creates a project and returns its ID.
func project(t *testing.T, s meta.Store, name string) int64 {
	t.Helper()
	id, err := s.CreateProject(t.Context(), &meta.Project{Name: name})
	require.NoError(t, err)
	return id
}

func testArtifacts(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	before := time.Now()

	a := &meta.Artifact{
		Digest: dg("img"), MediaType: mtManifest, ArtifactType: "application/vnd.oci.image.config.v1+json",
		Size: 1234, Annotations: map[string]string{"org.opencontainers.image.created": "2024-01-02T03:04:05Z"},
	}
	push(t, s, pid, "library/app", a, "v1")
	require.Positive(t, a.ID)
	require.Positive(t, a.RepositoryID)
	require.Equal(t, "library/app", a.Repository)
	requireRecent(t, a.PushTime, before)

	got, err := s.GetArtifact(ctx, "library/app", a.Digest)
	require.NoError(t, err)
	require.Equal(t, a, got)
	require.True(t, got.PullTime.IsZero())
	require.Empty(t, got.Subject)

	byTag, err := s.ResolveTag(ctx, "library/app", "v1")
	require.NoError(t, err)
	require.Equal(t, a, byTag)

	// An existing digest keeps its row; only the tag is added.
	again := &meta.Artifact{Digest: a.Digest, MediaType: mtIndex, Size: 1, PushTime: time.Unix(1, 0)}
	push(t, s, pid, "library/app", again, "v2")
	require.Equal(t, a.ID, again.ID)
	require.Equal(t, a.PushTime, again.PushTime, "the stored push time is reported")
	got, err = s.GetArtifact(ctx, "library/app", a.Digest)
	require.NoError(t, err)
	require.Equal(t, a, got)
	byTag, err = s.ResolveTag(ctx, "library/app", "v2")
	require.NoError(t, err)
	require.Equal(t, a.ID, byTag.ID)

	// Untagged put, with a given push time; an index without annotations.
	pushed := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.FixedZone("CEST", 2*3600))
	idx := &meta.Artifact{Digest: dg("idx"), MediaType: mtIndex, Size: 99, PushTime: pushed}
	push(t, s, pid, "library/app", idx, "")
	require.Equal(t, time.UTC, idx.PushTime.Location())
	got, err = s.GetArtifact(ctx, "library/app", idx.Digest)
	require.NoError(t, err)
	require.Equal(t, idx, got)
	require.Nil(t, got.Annotations)
	require.True(t, pushed.Equal(got.PushTime))
	require.Equal(t, time.UTC, got.PushTime.Location())
	require.Equal(t, a.RepositoryID, got.RepositoryID)

	// Same digest in another repository is another artifact.
	other := &meta.Artifact{Digest: a.Digest, MediaType: mtManifest, Size: 1234}
	push(t, s, pid, "library/other", other, "")
	require.NotEqual(t, a.ID, other.ID)
	require.NotEqual(t, a.RepositoryID, other.RepositoryID)

	for _, tc := range []struct{ repo, digest string }{
		{"library/app", dg("missing")},
		{"library/missing", a.Digest},
	} {
		_, err = s.GetArtifact(ctx, tc.repo, tc.digest)
		require.ErrorIs(t, err, meta.ErrNotFound)
	}
	_, err = s.ResolveTag(ctx, "library/app", "nope")
	require.ErrorIs(t, err, meta.ErrNotFound)
	_, err = s.ResolveTag(ctx, "library/missing", "v1")
	require.ErrorIs(t, err, meta.ErrNotFound)

	// Errors: unknown project; a repository name already owned by another project; empty keys.
	err = s.PutArtifact(ctx, 999999, "ghost/app", &meta.Artifact{Digest: dg("x"), MediaType: mtManifest}, "v1")
	require.ErrorIs(t, err, meta.ErrNotFound)
	_, err = s.ListTags(ctx, "ghost/app", meta.Page{})
	require.ErrorIs(t, err, meta.ErrNotFound, "failed put must leave no repository")
	pid2 := project(t, s, "other")
	err = s.PutArtifact(ctx, pid2, "library/app", &meta.Artifact{Digest: dg("y"), MediaType: mtManifest}, "")
	require.ErrorIs(t, err, meta.ErrConflict)
	require.Error(t, s.PutArtifact(ctx, pid, "", &meta.Artifact{Digest: dg("z")}, ""))
	require.Error(t, s.PutArtifact(ctx, pid, "library/app", &meta.Artifact{}, ""))
}

func testTags(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	a1 := manifest("1", 1)
	a2 := manifest("2", 2)
	push(t, s, pid, "library/app", a1, "latest")
	push(t, s, pid, "library/app", a2, "")
	// Bytewise order, whatever the database collation: digits < upper case < '_' < lower case.
	for _, tag := range []string{"b", "a", "Z", "_x", "1.0", "v1.10", "v1.9"} {
		push(t, s, pid, "library/app", a1, tag)
	}

	// Moving a tag.
	push(t, s, pid, "library/app", a2, "latest")
	got, err := s.ResolveTag(ctx, "library/app", "latest")
	require.NoError(t, err)
	require.Equal(t, a2.ID, got.ID)

	all := []string{"1.0", "Z", "_x", "a", "b", "latest", "v1.10", "v1.9"}
	for _, tc := range []struct {
		name string
		page meta.Page
		want []string
	}{
		{"all", meta.Page{}, all},
		{"all, negative N", meta.Page{N: -1}, all},
		{"first page", meta.Page{N: 3}, all[:3]},
		{"next page", meta.Page{Last: "_x", N: 3}, all[3:6]},
		{"last page", meta.Page{Last: "latest", N: 3}, all[6:]},
		{"after the end", meta.Page{Last: "zzz", N: 3}, []string{}},
		{"after a name that is not a tag", meta.Page{Last: "c"}, all[5:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tags, err := s.ListTags(ctx, "library/app", tc.page)
			require.NoError(t, err)
			require.Equal(t, tc.want, tags)
		})
	}

	_, err = s.ListTags(ctx, "library/none", meta.Page{})
	require.ErrorIs(t, err, meta.ErrNotFound)

	require.NoError(t, s.DeleteTag(ctx, "library/app", "latest"))
	_, err = s.ResolveTag(ctx, "library/app", "latest")
	require.ErrorIs(t, err, meta.ErrNotFound)
	require.ErrorIs(t, s.DeleteTag(ctx, "library/app", "latest"), meta.ErrNotFound)
	require.ErrorIs(t, s.DeleteTag(ctx, "library/none", "a"), meta.ErrNotFound)
	// Deleting a tag keeps the artifact.
	_, err = s.GetArtifact(ctx, "library/app", a2.Digest)
	require.NoError(t, err)

	// Several tags in one put, empty ones ignored, moved together.
	push(t, s, pid, "library/multi", a1, "x", "", "y")
	tags, err := s.ListTags(ctx, "library/multi", meta.Page{})
	require.NoError(t, err)
	require.Equal(t, []string{"x", "y"}, tags)
	push(t, s, pid, "library/multi", a2, "y", "z")
	for tag, want := range map[string]string{"x": a1.Digest, "y": a2.Digest, "z": a2.Digest} {
		got, err := s.ResolveTag(ctx, "library/multi", tag)
		require.NoError(t, err)
		require.Equal(t, want, got.Digest, tag)
	}

	// A repository whose last tag is gone lists no tags, and is still found.
	push(t, s, pid, "library/solo", a1, "only")
	require.NoError(t, s.DeleteTag(ctx, "library/solo", "only"))
	tags, err = s.ListTags(ctx, "library/solo", meta.Page{})
	require.NoError(t, err)
	require.NotNil(t, tags)
	require.Empty(t, tags)
}

func testRepositories(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	lib := project(t, s, "library")
	team := project(t, s, "team")

	repos, err := s.ListRepositories(ctx, meta.Page{})
	require.NoError(t, err)
	require.NotNil(t, repos)
	require.Empty(t, repos)

	art := manifest("a", 1)
	for _, r := range []string{"library/zeta", "library/alpha", "library/Beta", "library/a/b/c"} {
		push(t, s, lib, r, art, "")
	}
	require.NoError(t, s.LinkBlob(ctx, team, "team/blobonly", dg("layer"), 5))

	all := []string{"library/Beta", "library/a/b/c", "library/alpha", "library/zeta", "team/blobonly"}
	for _, tc := range []struct {
		page meta.Page
		want []string
	}{
		{meta.Page{}, all},
		{meta.Page{N: 2}, all[:2]},
		{meta.Page{Last: "library/a/b/c", N: 2}, all[2:4]},
		{meta.Page{Last: "library/zeta"}, all[4:]},
		{meta.Page{Last: "team/blobonly", N: 10}, []string{}},
	} {
		repos, err := s.ListRepositories(ctx, tc.page)
		require.NoError(t, err)
		require.Equal(t, tc.want, repos, "page %+v", tc.page)
	}

	for id, want := range map[int64]int64{lib: 4, team: 1, 999999: 0} {
		n, err := s.CountRepositories(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, n, "project %d", id)
	}
}

func testReferrers(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	const repo = "library/app"
	subject := manifest("subject", 10)
	push(t, s, pid, repo, subject, "v1")

	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ref := func(name, at string, push time.Time) *meta.Artifact {
		return &meta.Artifact{
			Digest: dg(name), MediaType: mtManifest, ArtifactType: at, Size: 100, Subject: subject.Digest,
			PushTime: push, Annotations: map[string]string{"name": name},
		}
	}
	sigOld := ref("sig-old", atSig, t0)
	sigNew := ref("sig-new", atSig, t0.Add(time.Hour))
	sbomA := ref("sbom-a", atSBOM, t0.Add(30*time.Minute))
	sbomB := ref("sbom-b", atSBOM, t0.Add(30*time.Minute)) // same push time: ordered by digest
	for _, a := range []*meta.Artifact{sigOld, sbomA, sigNew, sbomB} {
		push(t, s, pid, repo, a, "")
	}
	// A referrer of another subject, and one of the same subject in another repository.
	push(t, s, pid, repo, &meta.Artifact{Digest: dg("x"), MediaType: mtManifest, Subject: dg("other")}, "")
	push(t, s, pid, "library/mirror", ref("mirror-sig", atSig, t0), "")

	sboms := []*meta.Artifact{sbomA, sbomB}
	if sbomB.Digest < sbomA.Digest {
		sboms = []*meta.Artifact{sbomB, sbomA}
	}
	digests := func(as []*meta.Artifact) []string {
		out := []string{}
		for _, a := range as {
			out = append(out, a.Digest)
		}
		return out
	}
	for _, tc := range []struct {
		name, repo, subject, artifactType string
		want                              []*meta.Artifact
	}{
		{"all", repo, subject.Digest, "", []*meta.Artifact{sigNew, sboms[0], sboms[1], sigOld}},
		{"signatures", repo, subject.Digest, atSig, []*meta.Artifact{sigNew, sigOld}},
		{"sboms", repo, subject.Digest, atSBOM, sboms},
		{"unknown type", repo, subject.Digest, "application/unknown", nil},
		{"unknown subject", repo, dg("nope"), "", nil},
		{"unknown repository", "library/none", subject.Digest, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListReferrers(ctx, tc.repo, tc.subject, tc.artifactType)
			require.NoError(t, err)
			require.NotNil(t, got)
			require.Equal(t, digests(tc.want), digests(got))
			if len(tc.want) > 0 {
				require.Equal(t, tc.want, got) // every field, times included
			}
		})
	}

	// Deleting a referrer drops it from the index; deleting the subject keeps its referrers.
	require.NoError(t, s.DeleteArtifact(ctx, repo, sigNew.Digest))
	require.NoError(t, s.DeleteArtifact(ctx, repo, subject.Digest))
	got, err := s.ListReferrers(ctx, repo, subject.Digest, atSig)
	require.NoError(t, err)
	require.Equal(t, []string{sigOld.Digest}, digests(got))
}

func testCascade(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	keep := manifest("keep", 1)
	drop := &meta.Artifact{Digest: dg("drop"), MediaType: mtManifest, Size: 2, Subject: keep.Digest, ArtifactType: atSig}
	push(t, s, pid, "library/app", keep, "keep")
	for _, tag := range []string{"a", "b", "c"} {
		push(t, s, pid, "library/app", drop, tag)
	}
	require.Equal(t, int64(4), countRows(t, s, "tag"))

	require.NoError(t, s.DeleteArtifact(ctx, "library/app", drop.Digest))
	require.Equal(t, int64(1), countRows(t, s, "tag"), "tags die with their artifact")
	require.Equal(t, int64(1), countRows(t, s, "artifact"))
	tags, err := s.ListTags(ctx, "library/app", meta.Page{})
	require.NoError(t, err)
	require.Equal(t, []string{"keep"}, tags)
	_, err = s.ResolveTag(ctx, "library/app", "a")
	require.ErrorIs(t, err, meta.ErrNotFound)
	refs, err := s.ListReferrers(ctx, "library/app", keep.Digest, "")
	require.NoError(t, err)
	require.Empty(t, refs)

	require.ErrorIs(t, s.DeleteArtifact(ctx, "library/app", drop.Digest), meta.ErrNotFound)
	require.ErrorIs(t, s.DeleteArtifact(ctx, "library/none", keep.Digest), meta.ErrNotFound)

	// Deleting a repository row (no API does yet) takes its artifacts, tags and links along.
	require.NoError(t, s.LinkBlob(ctx, pid, "library/app", dg("layer"), 3))
	_, err = exec(ctx, s.(*store).w, `DELETE FROM repository WHERE name = ?`, "library/app")
	require.NoError(t, err)
	for _, table := range []string{"artifact", "tag", "blob_link", "repository"} {
		require.Zero(t, countRows(t, s, table), table)
	}
}

func testTouchPull(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	a := manifest("a", 1)
	push(t, s, pid, "library/app", a, "")

	t1 := time.Date(2025, 3, 4, 5, 6, 7, 891234000, time.FixedZone("X", -5*3600))
	require.NoError(t, s.TouchPull(ctx, "library/app", a.Digest, t1))
	got, err := s.GetArtifact(ctx, "library/app", a.Digest)
	require.NoError(t, err)
	require.True(t, t1.Equal(got.PullTime))
	require.Equal(t, time.UTC, got.PullTime.Location())

	// An older pull time (a late, reordered update) does not move it back; a newer one does.
	require.NoError(t, s.TouchPull(ctx, "library/app", a.Digest, t1.Add(-time.Hour)))
	got, err = s.GetArtifact(ctx, "library/app", a.Digest)
	require.NoError(t, err)
	require.True(t, t1.Equal(got.PullTime))
	require.NoError(t, s.TouchPull(ctx, "library/app", a.Digest, t1.Add(time.Hour)))
	got, err = s.GetArtifact(ctx, "library/app", a.Digest)
	require.NoError(t, err)
	require.True(t, t1.Add(time.Hour).Equal(got.PullTime))

	require.ErrorIs(t, s.TouchPull(ctx, "library/app", dg("none"), t1), meta.ErrNotFound)
	require.ErrorIs(t, s.TouchPull(ctx, "library/none", a.Digest, t1), meta.ErrNotFound)
}

func testBlobLinks(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	layer := dg("layer")

	_, err := s.BlobLinked(ctx, "library/app", layer)
	require.ErrorIs(t, err, meta.ErrNotFound)

	require.NoError(t, s.LinkBlob(ctx, pid, "library/app", layer, 4096))
	require.NoError(t, s.LinkBlob(ctx, pid, "library/app", layer, 4096)) // idempotent
	size, err := s.BlobLinked(ctx, "library/app", layer)
	require.NoError(t, err)
	require.Equal(t, int64(4096), size)

	// Links are per repository; the first link created the repository.
	_, err = s.BlobLinked(ctx, "library/other", layer)
	require.ErrorIs(t, err, meta.ErrNotFound)
	tags, err := s.ListTags(ctx, "library/app", meta.Page{})
	require.NoError(t, err)
	require.Empty(t, tags)

	// Found in any repository of its project, and only there.
	size, err = s.BlobLinkedInProject(ctx, pid, layer)
	require.NoError(t, err)
	require.Equal(t, int64(4096), size)
	_, err = s.BlobLinkedInProject(ctx, pid, dg("elsewhere"))
	require.ErrorIs(t, err, meta.ErrNotFound)
	stranger := project(t, s, "stranger")
	_, err = s.BlobLinkedInProject(ctx, stranger, layer)
	require.ErrorIs(t, err, meta.ErrNotFound)

	require.NoError(t, s.UnlinkBlob(ctx, "library/app", layer))
	_, err = s.BlobLinkedInProject(ctx, pid, layer)
	require.ErrorIs(t, err, meta.ErrNotFound)
	_, err = s.BlobLinked(ctx, "library/app", layer)
	require.ErrorIs(t, err, meta.ErrNotFound)
	require.ErrorIs(t, s.UnlinkBlob(ctx, "library/app", layer), meta.ErrNotFound)
	require.ErrorIs(t, s.UnlinkBlob(ctx, "library/none", layer), meta.ErrNotFound)

	require.ErrorIs(t, s.LinkBlob(ctx, 999999, "ghost/app", layer, 1), meta.ErrNotFound)
	other := project(t, s, "other")
	require.ErrorIs(t, s.LinkBlob(ctx, other, "library/app", layer, 1), meta.ErrConflict)
	require.Error(t, s.LinkBlob(ctx, pid, "library/app", "", 1))
}

// testOrigin: the origin is stored with a new artifact, reported by every read, and kept when the
// same digest is stored again with another origin (first arrival wins).
func testOrigin(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "mirror")
	cases := []struct {
		name, first, again, want string
	}{
		{"pushed", meta.OriginPushed, "", meta.OriginPushed},
		{"pulled", meta.OriginPulled, "", meta.OriginPulled},
		{"pushed then pulled", meta.OriginPushed, meta.OriginPulled, meta.OriginPushed},
		{"pulled then pushed", meta.OriginPulled, meta.OriginPushed, meta.OriginPulled},
	}
	for _, tc := range cases {
		a := &meta.Artifact{Digest: dg(tc.name), MediaType: mtManifest, Size: 1, Subject: dg("subject"), Origin: tc.first}
		require.NoError(t, s.PutArtifact(t.Context(), pid, "mirror/app", a, ""), tc.name)
		if tc.again != "" {
			again := &meta.Artifact{Digest: a.Digest, MediaType: mtManifest, Size: 1, Origin: tc.again}
			require.NoError(t, s.PutArtifact(t.Context(), pid, "mirror/app", again, "t"), tc.name)
			require.Equal(t, tc.want, again.Origin, "%s: PutArtifact reports the stored origin", tc.name)
		}
		got, err := s.GetArtifact(ctx, "mirror/app", a.Digest)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got.Origin, tc.name)
	}
	refs, err := s.ListReferrers(ctx, "mirror/app", dg("subject"), "")
	require.NoError(t, err)
	require.Len(t, refs, len(cases))
	for _, r := range refs {
		require.NotEmpty(t, r.Origin, "ListReferrers reads the origin too")
	}
}

// TestOriginMigration: a database at schema version 1 with an artifact in it gets the origin column at
// Open, and that artifact reads as origin "" (unknown).
func TestOriginMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	stmts := append([]string{
		`CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_time BIGINT NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, 'initial schema', 0)`,
	}, migrations[0].up(sqliteDialect)...)
	stmts = append(stmts,
		`INSERT INTO project (name, creation_time, update_time) VALUES ('library', 0, 0)`,
		`INSERT INTO repository (project_id, name, creation_time) VALUES (1, 'library/app', 0)`,
		`INSERT INTO artifact (repository_id, digest, media_type, size, push_time) VALUES (1, '`+dg("old")+`', '`+mtManifest+`', 1, 0)`)
	for _, stmt := range stmts {
		_, err := db.ExecContext(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, db.Close())

	s := openStore(t, path)
	got, err := s.GetArtifact(ctx, "library/app", dg("old"))
	require.NoError(t, err)
	require.Empty(t, got.Origin, "rows from before the migration have no known origin")
	require.Equal(t, int64(len(migrations)), countRows(t, s, "schema_migrations"))
}
