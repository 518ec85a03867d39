package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/berth-registry/berth/src/pkg/meta"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dbFactory returns the URL of a fresh, empty database of its own for one test.
type dbFactory func(t testing.TB) string

// runSuite runs every Store test against databases from newDB, each subtest on its own database and in
// parallel with the others.
func runSuite(t *testing.T, newDB dbFactory) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, newDB dbFactory)
	}{
		{"Projects", testProjects},
		{"ProjectList", testProjectList},
		{"ProjectDelete", testProjectDelete},
		{"Registries", testRegistries},
		{"RegistryList", testRegistryList},
		{"Artifacts", testArtifacts},
		{"Tags", testTags},
		{"Repositories", testRepositories},
		{"RepositoryReads", testRepositoryReads},
		{"ProjectUsage", testProjectUsage},
		{"Sessions", testSessions},
		{"Referrers", testReferrers},
		{"Cascade", testCascade},
		{"TouchPull", testTouchPull},
		{"RecordPulls", testRecordPulls},
		{"ListProjectArtifacts", testListProjectArtifacts},
		{"RetentionPolicies", testRetentionPolicies},
		{"RetentionExecutions", testRetentionExecutions},
		{"Origin", testOrigin},
		{"BlobLinks", testBlobLinks},
		{"Robots", testRobots},
		{"Users", testUsers},
		{"Members", testMembers},
		{"Audit", testAudit},
		{"QuotaUsage", testQuotaUsage},
		{"QuotaLimit", testQuotaLimit},
		{"QuotaConcurrent", testQuotaConcurrent},
		{"ListCachedArtifacts", testListCachedArtifacts},
		{"GCProtocol", testGCProtocol},
		{"GCPinRace", testGCPinRace},
		{"GCUntagged", testGCUntagged},
		{"GCJobs", testGCJobs},
		{"ContextCancelled", testContextCancelled},
		{"PingClose", testPingClose},
		{"Reopen", testReopen},
		{"ConcurrentOpen", testConcurrentOpen},
		{"ConcurrentPush", testConcurrentPush},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newDB)
		})
	}
}

const (
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtIndex    = "application/vnd.oci.image.index.v1+json"
	atSig      = "application/vnd.dev.cosign.artifact.sig.v1+json"
	atSBOM     = "application/spdx+json"
)

// dg returns a sha256 digest string derived from s.
func dg(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// openStore opens url and closes the store at cleanup.
func openStore(t *testing.T, url string) meta.Store {
	t.Helper()
	s, err := Open(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func newStore(t *testing.T, newDB dbFactory) meta.Store {
	t.Helper()
	return openStore(t, newDB(t))
}

// storeWithProject opens a fresh store holding one project, name, and returns a context for the
// test, the store and the project's ID.
func storeWithProject(t *testing.T, newDB dbFactory, name string) (context.Context, meta.Store, int64) {
	t.Helper()
	s := newStore(t, newDB)
	return t.Context(), s, project(t, s, name)
}

// countRows counts the rows of a table, bypassing the API (for cascade checks).
func countRows(t *testing.T, s meta.Store, table string) int64 {
	t.Helper()
	var n []int64
	_, err := queryRows(t.Context(), s.(*store).r, &n, "SELECT COUNT(*) FROM "+table)
	require.NoError(t, err)
	return n[0]
}

// requireCreated checks what a Create method returned: no error, a positive ID that is also set on the
// entity (entityID), and a recent creation time.
func requireCreated(t *testing.T, id int64, err error, entityID int64, created, before time.Time) {
	t.Helper()
	require.NoError(t, err)
	require.Positive(t, id)
	require.Equal(t, id, entityID)
	requireRecent(t, created, before)
}

// push records a in repo of project pid with tags and requires no error.
func push(t *testing.T, s meta.Store, pid int64, repo string, a *meta.Artifact, tags ...string) {
	t.Helper()
	require.NoError(t, s.PutArtifact(t.Context(), pid, repo, a, tags...))
}

// manifest is an image manifest artifact of digest dg(name).
func manifest(name string, size int64) *meta.Artifact {
	return &meta.Artifact{Digest: dg(name), MediaType: mtManifest, Size: size}
}

// requireRecent checks that ts was set by the store just now, in UTC at microsecond precision.
func requireRecent(t *testing.T, ts, before time.Time) {
	t.Helper()
	require.Equal(t, time.UTC, ts.Location())
	require.False(t, ts.Before(before.Truncate(time.Microsecond)), "%v before %v", ts, before)
	require.False(t, ts.After(time.Now()), "%v in the future", ts)
	require.Equal(t, ts, ts.Truncate(time.Microsecond))
}

func testProjects(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	before := time.Now()

	p := &meta.Project{Name: "library", Metadata: map[string]string{meta.MetaPublic: "true"}, StorageLimit: -1}
	id, err := s.CreateProject(ctx, p)
	requireCreated(t, id, err, p.ID, p.CreationTime, before)
	require.Equal(t, p.CreationTime, p.UpdateTime)

	got, err := s.GetProject(ctx, id)
	require.NoError(t, err)
	require.Equal(t, p, got)
	require.True(t, got.Public())
	require.False(t, got.IsProxy())
	require.False(t, got.ProxyReferrerAPI())

	got, err = s.GetProjectByName(ctx, "library")
	require.NoError(t, err)
	require.Equal(t, p, got)

	// Nil metadata comes back as an empty map that callers can write to.
	bare := &meta.Project{Name: "bare"}
	_, err = s.CreateProject(ctx, bare)
	require.NoError(t, err)
	got, err = s.GetProject(ctx, bare.ID)
	require.NoError(t, err)
	require.NotNil(t, got.Metadata)
	require.Empty(t, got.Metadata)
	require.NotEqual(t, p.ID, bare.ID)

	_, err = s.CreateProject(ctx, &meta.Project{Name: "library"})
	require.ErrorIs(t, err, meta.ErrConflict)
	_, err = s.GetProject(ctx, 999999)
	require.ErrorIs(t, err, meta.ErrNotFound)
	_, err = s.GetProjectByName(ctx, "nope")
	require.ErrorIs(t, err, meta.ErrNotFound)
	_, err = s.CreateProject(ctx, &meta.Project{Name: "orphan", RegistryID: 424242})
	require.ErrorIs(t, err, meta.ErrNotFound)

	// Update: metadata, registry and limit; name and creation time stay.
	regID, err := s.CreateRegistry(ctx, &meta.Registry{Name: "hub", Type: "docker-hub", URL: "https://registry-1.docker.io"})
	require.NoError(t, err)
	upd := *got
	upd.Name = "ignored"
	upd.RegistryID = regID
	upd.StorageLimit = 1 << 30
	upd.Metadata = map[string]string{meta.MetaPublic: "false", meta.MetaProxyReferrerAPI: "true", meta.MetaProxyReferrerCacheSecond: "60"}
	require.NoError(t, s.UpdateProject(ctx, &upd))
	require.False(t, upd.UpdateTime.Before(upd.CreationTime))
	got, err = s.GetProject(ctx, bare.ID)
	require.NoError(t, err)
	require.Equal(t, "bare", got.Name)
	require.Equal(t, regID, got.RegistryID)
	require.Equal(t, int64(1<<30), got.StorageLimit)
	require.Equal(t, upd.Metadata, got.Metadata)
	require.Equal(t, bare.CreationTime, got.CreationTime)
	require.Equal(t, upd.UpdateTime, got.UpdateTime)
	require.True(t, got.IsProxy())
	require.True(t, got.ProxyReferrerAPI())
	require.False(t, got.Public())

	// Back to a local project.
	upd.RegistryID = 0
	require.NoError(t, s.UpdateProject(ctx, &upd))
	got, err = s.GetProject(ctx, bare.ID)
	require.NoError(t, err)
	require.Zero(t, got.RegistryID)

	upd.RegistryID = 424242
	require.ErrorIs(t, s.UpdateProject(ctx, &upd), meta.ErrNotFound)
	require.ErrorIs(t, s.UpdateProject(ctx, &meta.Project{ID: 999999}), meta.ErrNotFound)
}

func testProjectList(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	for _, name := range []string{"team-b", "team-a", "library", "team_c", "proxy-hub", "Team-D"} {
		_, err := s.CreateProject(ctx, &meta.Project{Name: name})
		require.NoError(t, err)
	}
	names := func(ps []*meta.Project) []string {
		out := make([]string, 0, len(ps))
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	for _, tc := range []struct {
		name          string
		filter        string
		offset, limit int
		want          []string
		total         int64
	}{
		{"all", "", 0, 0, []string{"Team-D", "library", "proxy-hub", "team-a", "team-b", "team_c"}, 6},
		{"first page", "", 0, 2, []string{"Team-D", "library"}, 6},
		{"second page", "", 2, 2, []string{"proxy-hub", "team-a"}, 6},
		{"offset without limit", "", 4, 0, []string{"team-b", "team_c"}, 6},
		{"past the end", "", 10, 2, []string{}, 6},
		{"substring, case-insensitive", "TEAM", 0, 0, []string{"Team-D", "team-a", "team-b", "team_c"}, 4},
		{"filtered page", "team", 1, 2, []string{"team-a", "team-b"}, 4},
		{"underscore is literal", "_", 0, 0, []string{"team_c"}, 1},
		{"percent is literal", "%", 0, 0, []string{}, 0},
		{"no match", "zzz", 0, 0, []string{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, total, err := s.ListProjects(ctx, tc.filter, tc.offset, tc.limit)
			require.NoError(t, err)
			require.Equal(t, tc.want, names(ps))
			require.Equal(t, tc.total, total)
		})
	}
}

func testProjectDelete(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	empty, err := s.CreateProject(ctx, &meta.Project{Name: "empty"})
	require.NoError(t, err)
	busy, err := s.CreateProject(ctx, &meta.Project{Name: "busy"})
	require.NoError(t, err)
	require.NoError(t, s.LinkBlob(ctx, busy, "busy/app", dg("layer"), 10))

	require.NoError(t, s.DeleteProject(ctx, empty))
	_, err = s.GetProject(ctx, empty)
	require.ErrorIs(t, err, meta.ErrNotFound)
	require.ErrorIs(t, s.DeleteProject(ctx, empty), meta.ErrNotFound)

	require.ErrorIs(t, s.DeleteProject(ctx, busy), meta.ErrConflict)
	_, err = s.GetProject(ctx, busy)
	require.NoError(t, err)

	// The foreign key backs the check up when it is bypassed (a push racing the delete).
	_, err = exec(ctx, s.(*store).w, `DELETE FROM project WHERE id = ?`, busy)
	require.True(t, isForeignKeyViolation(err), "got %v", err)
}

func testRegistries(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	before := time.Now()
	r := &meta.Registry{
		Name: "hub", Type: "docker-hub", URL: "https://registry-1.docker.io", Description: "Docker Hub",
		Insecure: true, CACertificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		CredentialType: "basic", AccessKey: "user", AccessSecret: "enc:c2VjcmV0",
	}
	id, err := s.CreateRegistry(ctx, r)
	requireCreated(t, id, err, r.ID, r.CreationTime, before)
	got, err := s.GetRegistry(ctx, id)
	require.NoError(t, err)
	require.Equal(t, r, got)

	_, err = s.CreateRegistry(ctx, &meta.Registry{Name: "hub"})
	require.ErrorIs(t, err, meta.ErrConflict)
	_, err = s.GetRegistry(ctx, 999999)
	require.ErrorIs(t, err, meta.ErrNotFound)

	other, err := s.CreateRegistry(ctx, &meta.Registry{Name: "ghcr", Type: "github-ghcr", URL: "https://ghcr.io"})
	require.NoError(t, err)

	upd := *got
	upd.Name, upd.URL, upd.Insecure, upd.AccessSecret, upd.CreationTime = "hub2", "https://mirror.example", false, "", time.Time{}
	require.NoError(t, s.UpdateRegistry(ctx, &upd))
	got, err = s.GetRegistry(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "hub2", got.Name)
	require.Equal(t, "https://mirror.example", got.URL)
	require.False(t, got.Insecure)
	require.Empty(t, got.AccessSecret)
	require.Equal(t, "user", got.AccessKey)
	require.Equal(t, r.CreationTime, got.CreationTime)
	require.Equal(t, upd.UpdateTime, got.UpdateTime)

	upd.Name = "ghcr"
	require.ErrorIs(t, s.UpdateRegistry(ctx, &upd), meta.ErrConflict)
	require.ErrorIs(t, s.UpdateRegistry(ctx, &meta.Registry{ID: 999999, Name: "x"}), meta.ErrNotFound)

	// A registry used by a project cannot go; once unused it can.
	pid, err := s.CreateProject(ctx, &meta.Project{Name: "proxy", RegistryID: other})
	require.NoError(t, err)
	require.ErrorIs(t, s.DeleteRegistry(ctx, other), meta.ErrConflict)
	require.NoError(t, s.DeleteProject(ctx, pid))
	require.NoError(t, s.DeleteRegistry(ctx, other))
	require.ErrorIs(t, s.DeleteRegistry(ctx, other), meta.ErrNotFound)
	_, err = s.GetRegistry(ctx, other)
	require.ErrorIs(t, err, meta.ErrNotFound)
}

func testRegistryList(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	for _, name := range []string{"quay", "hub", "ghcr", "hub-mirror"} {
		_, err := s.CreateRegistry(ctx, &meta.Registry{Name: name})
		require.NoError(t, err)
	}
	for _, tc := range []struct {
		filter        string
		offset, limit int
		want          []string
		total         int64
	}{
		{"", 0, 0, []string{"ghcr", "hub", "hub-mirror", "quay"}, 4},
		{"", 1, 2, []string{"hub", "hub-mirror"}, 4},
		{"", 3, 0, []string{"quay"}, 4},
		{"HUB", 0, 0, []string{"hub", "hub-mirror"}, 2},
		{"hub", 1, 1, []string{"hub-mirror"}, 2},
		{"none", 0, 0, nil, 0},
	} {
		t.Run(fmt.Sprintf("%q/%d/%d", tc.filter, tc.offset, tc.limit), func(t *testing.T) {
			rs, total, err := s.ListRegistries(ctx, tc.filter, tc.offset, tc.limit)
			require.NoError(t, err)
			var got []string
			for _, r := range rs {
				got = append(got, r.Name)
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.total, total)
		})
	}
}
