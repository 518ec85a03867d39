package sqlstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// BenchmarkHotReads compares, in one run, the hot-path reads as beego Raw queries (how they ran before
// prepared statements: "raw") with the store's methods ("prepared"), on SQLite and PostgreSQL.
//
//	go test -run '^$' -bench HotReads -benchmem ./src/pkg/meta/sqlstore/
func BenchmarkHotReads(b *testing.B) {
	for _, db := range []struct {
		name  string
		newDB dbFactory
	}{{"sqlite", newSQLiteDB}, {"postgres", newPostgresDB}} {
		b.Run(db.name, func(b *testing.B) { benchHotReads(b, db.newDB) })
	}
}

func benchHotReads(b *testing.B, newDB dbFactory) {
	ctx := context.Background()
	s, err := Open(ctx, newDB(b))
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	st := s.(*store)
	pid, err := s.CreateProject(ctx, &meta.Project{Name: "library", Metadata: map[string]string{meta.MetaPublic: "true"}})
	require.NoError(b, err)
	subject := manifest("subject", 10)
	require.NoError(b, s.PutArtifact(ctx, pid, "library/app", subject, "v1"))
	for _, n := range []string{"sig", "sbom", "att"} {
		a := &meta.Artifact{Digest: dg(n), MediaType: mtManifest, ArtifactType: "application/" + n, Subject: subject.Digest,
			Annotations: map[string]string{"k": n}}
		require.NoError(b, s.PutArtifact(ctx, pid, "library/app", a, ""))
	}
	require.NoError(b, s.LinkBlob(ctx, pid, "library/app", dg("layer"), 42))

	rawArtifact := func(query string, args ...any) error {
		var rows []artifactRow
		if _, err := queryRows(ctx, st.r, &rows, query, args...); err != nil {
			return err
		}
		for i := range rows {
			if _, err := rows[i].artifact(); err != nil {
				return err
			}
		}
		return nil
	}
	cases := []struct {
		name      string
		raw, prep func() error
	}{
		{"GetProjectByName", func() error {
			var rows []projectRow
			if _, err := queryRows(ctx, st.r, &rows, getProjectByNameSQL, "library"); err != nil {
				return err
			}
			_, err := rows[0].project()
			return err
		}, func() error { _, err := s.GetProjectByName(ctx, "library"); return err }},
		{"GetArtifact", func() error { return rawArtifact(getArtifactSQL, "library/app", subject.Digest) },
			func() error { _, err := s.GetArtifact(ctx, "library/app", subject.Digest); return err }},
		{"ResolveTag", func() error { return rawArtifact(resolveTagSQL, "library/app", "v1") },
			func() error { _, err := s.ResolveTag(ctx, "library/app", "v1"); return err }},
		{"ListReferrers", func() error { return rawArtifact(listReferrersAllSQL, "library/app", subject.Digest) },
			func() error { _, err := s.ListReferrers(ctx, "library/app", subject.Digest, ""); return err }},
		{"BlobLinked", func() error {
			var sizes []int64
			_, err := queryRows(ctx, st.r, &sizes, blobLinkedSQL, "library/app", dg("layer"))
			return err
		}, func() error { _, err := s.BlobLinked(ctx, "library/app", dg("layer")); return err }},
	}
	for _, c := range cases {
		for _, v := range []struct {
			name string
			fn   func() error
		}{{"raw", c.raw}, {"prepared", c.prep}} {
			b.Run(c.name+"/"+v.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := v.fn(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
