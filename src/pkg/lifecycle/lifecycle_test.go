package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// TestPlan: the one removal rule, on a repository with two indexes sharing a child, a tagged child, a
// referrer chain pulled through and a signature pushed here. Whatever the targets (one index, as
// retention selects, or the whole group, as eviction does), every referrer goes before its subject and
// every index before its children.
func TestPlan(t *testing.T) {
	ctx := context.Background()
	fs, err := storage.NewFS(filepath.Join(t.TempDir(), "storage"))
	require.NoError(t, err)
	d := func(name string) string { return digest.FromString(name).String() }
	index := func(name string, kids ...string) *meta.Artifact {
		var doc struct {
			Manifests []map[string]string `json:"manifests"`
		}
		for _, k := range kids {
			doc.Manifests = append(doc.Manifests, map[string]string{"digest": d(k)})
		}
		body, err := json.Marshal(doc)
		require.NoError(t, err)
		dg := digest.FromBytes(body)
		_, err = fs.Put(ctx, dg, bytes.NewReader(body))
		require.NoError(t, err)
		return &meta.Artifact{Repository: "p/app", Digest: dg.String(), MediaType: "application/vnd.oci.image.index.v1+json", Origin: meta.OriginPulled}
	}
	img := func(name, subject, origin string) *meta.Artifact {
		return &meta.Artifact{Repository: "p/app", Digest: d(name), Subject: subject, Origin: origin,
			MediaType: "application/vnd.oci.image.manifest.v1+json"}
	}
	idx, idx2 := index("idx", "c1", "c2", "shared"), index("idx2", "shared")
	arts := []*meta.Artifact{img("c1", "", meta.OriginPulled), img("c2", "", meta.OriginPulled), img("shared", "", meta.OriginPulled),
		idx, idx2, img("sbom", idx.Digest, meta.OriginPulled), img("sig-of-sbom", d("sbom"), meta.OriginPulled),
		img("sig", d("c1"), meta.OriginPushed)}
	for i, a := range arts {
		a.ID = int64(i + 1)
	}
	name := map[string]string{idx.Digest: "idx", idx2.Digest: "idx2"}
	for _, n := range []string{"c1", "c2", "shared", "sbom", "sig-of-sbom", "sig"} {
		name[d(n)] = n
	}
	r, err := newRepo(ctx, fs, "p/app", arts, map[int64][]string{2: {"v2"}}) // c2 is tagged
	require.NoError(t, err)

	for _, tc := range []struct {
		name    string
		targets []string
		want    map[string]string // name -> reason
	}{
		{"an index, as retention selects it", []string{idx.Digest}, map[string]string{
			"idx": ReasonSelected, "c1": ReasonChild, "sbom": ReasonReferrer, "sig-of-sbom": ReasonReferrer, "sig": ReasonPushedReferrer}},
		{"a whole group, as eviction targets it, children first", []string{d("c1"), d("c2"), d("shared"), idx2.Digest, idx.Digest, d("sbom")}, map[string]string{
			"c1": ReasonSelected, "c2": ReasonSelected, "shared": ReasonSelected, "idx2": ReasonSelected, "idx": ReasonSelected,
			"sbom": ReasonSelected, "sig-of-sbom": ReasonReferrer, "sig": ReasonPushedReferrer}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := Plan(r, tc.targets)
			got := map[string]string{}
			var order []string
			for _, p := range plan {
				got[name[p.Artifact.Digest]] = p.Reason
				order = append(order, name[p.Artifact.Digest])
			}
			require.Equal(t, tc.want, got)
			at := func(n string) int { return slices.Index(order, n) }
			for _, before := range [][2]string{{"sig-of-sbom", "sbom"}, {"sbom", "idx"}, {"idx", "c1"}, {"sig", "c1"}, {"idx", "c2"}, {"idx", "shared"}, {"idx2", "shared"}} {
				if at(before[0]) >= 0 && at(before[1]) >= 0 {
					require.Less(t, at(before[0]), at(before[1]), "%s before %s in %v", before[0], before[1], order)
				}
			}
		})
	}
}
