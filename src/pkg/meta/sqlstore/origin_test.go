package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

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
		require.NoError(t, s.PutArtifact(ctx, pid, "mirror/app", a, ""), tc.name)
		if tc.again != "" {
			again := &meta.Artifact{Digest: a.Digest, MediaType: mtManifest, Size: 1, Origin: tc.again}
			require.NoError(t, s.PutArtifact(ctx, pid, "mirror/app", again, "t"), tc.name)
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
	ctx := context.Background()
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
