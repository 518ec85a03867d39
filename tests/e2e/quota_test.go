package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	harbor "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/quota"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
)

// pushRandomImage pushes to the upstream an image of one random layer of n bytes and returns its
// manifest and layer digests (the bytes are not kept: 200 MiB stay out of memory).
func pushRandomImage(t *testing.T, up *upstream, repo string, n int) (digest.Digest, digest.Digest) {
	t.Helper()
	layer := make([]byte, n)
	_, _ = rand.Read(layer)
	ld := up.reg.PushBlob(t, repo, layer)
	ld.MediaType = ocispec.MediaTypeImageLayer
	cd := up.reg.PushBlob(t, repo, imageConfig(t, "amd64", ld.Digest))
	cd.MediaType = ocispec.MediaTypeImageConfig
	body := mustMarshal(t, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{ld}})
	m := up.reg.PushManifest(t, repo, "v1", ocispec.MediaTypeImageManifest, body)
	return m.Digest, ld.Digest
}

// requireLayoutDigest checks that the OCI layout dir holds blob d, hashing it from disk, then removes
// the layout.
func requireLayoutDigest(t *testing.T, c *clients, dir string, d digest.Digest) {
	t.Helper()
	f, err := os.Open(filepath.Join(c.work, dir, "blobs", d.Algorithm().String(), d.Encoded()))
	require.NoError(t, err, "blob %s in the OCI layout %s", d, dir)
	v := d.Verifier()
	_, err = io.Copy(v, f)
	_ = f.Close()
	require.NoError(t, err)
	require.True(t, v.Verified(), "blob %s in the OCI layout %s does not match its digest", d, dir)
	require.NoError(t, os.RemoveAll(filepath.Join(c.work, dir)))
}

// TestQuotaProxyEviction: a proxy-cache project with a 50 MiB quota serves crane pulls of ten distinct
// 20 MiB images in turn (200 MiB) without failing one, evicting the least recently pulled to make room,
// and never holds more than its quota (the summary's used <= hard after every pull); a 60 MiB image,
// larger than the whole quota, is served without being kept. A push over the quota of a local project
// fails with Harbor's 403 DENIED "Quota exceeded ..." error.
func TestQuotaProxyEviction(t *testing.T) {
	t.Parallel()
	toolsDir(t, "crane", "oras")
	up := distributionUpstream(t)
	srv := startServer(t, serverConfig{})
	hc := srv.harborClient(t)
	ctx := context.Background()
	id := srv.createRegistry(t, "upstream-quota", up.URL, up.Auth)
	const hard = 50 << 20
	_, err := hc.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{
		ProjectName: "cache", RegistryID: &id, StorageLimit: ptrTo(int64(hard)), Metadata: &models.ProjectMetadata{Public: "true"}}))
	require.NoError(t, err)
	c := newClients(t, srv, "crane", "oras")
	c.loginCrane()
	c.loginOras()

	summary := func() *models.ProjectSummary {
		t.Helper()
		res, err := hc.Project.GetProjectSummary(ctx, project.NewGetProjectSummaryParams().WithProjectNameOrID("cache"))
		require.NoError(t, err)
		require.Equal(t, int64(hard), res.Payload.Quota.Hard["storage"])
		require.NotNil(t, res.Payload.Registry)
		return res.Payload
	}
	pull := func(repo string, layer digest.Digest) {
		t.Helper()
		out := "oci-" + strings.ReplaceAll(repo, "/", "-")
		c.must("crane", "pull", "--format", "oci", srv.Host+"/cache/"+repo+":v1", out)
		requireLayoutDigest(t, c, out, layer)
		s := summary()
		require.LessOrEqual(t, s.Quota.Used["storage"], s.Quota.Hard["storage"], "after pulling %s", repo)
	}

	layers := map[string]digest.Digest{}
	for i := range 10 {
		repo := fmt.Sprintf("lib/img%d", i)
		_, layers[repo] = pushRandomImage(t, up, repo, 20<<20)
		pull(repo, layers[repo])
	}
	require.GreaterOrEqual(t, srv.metric(t, `berth_evictions_total{reason="quota"}`), 8.0, "two 20 MiB images fit in 50 MiB")
	require.Positive(t, summary().Quota.Used["storage"])

	// The first image was evicted long ago: pulling it again pulls it through again.
	pull("lib/img0", layers["lib/img0"])

	// Larger than the whole quota: streamed through, not kept, counted.
	_, big := pushRandomImage(t, up, "lib/big", 60<<20)
	pull("lib/big", big)
	require.Equal(t, 1.0, srv.metric(t, "berth_quota_passthrough_total"))
	pull("lib/big", big)

	// A local project over its quota refuses the push with Harbor's error.
	_, err = hc.Project.CreateProject(ctx, project.NewCreateProjectParams().WithProject(&models.ProjectReq{
		ProjectName: "local", StorageLimit: ptrTo(int64(1 << 20))}))
	require.NoError(t, err)
	blob := make([]byte, 2<<20)
	_, _ = rand.Read(blob)
	c.writeFile("big.bin", blob)
	r := c.mustFail("oras", "push", "--plain-http", srv.Host+"/local/big:v1", "big.bin")
	require.Contains(t, r.Stderr, "denied", "%s", r) // oras prints the code in lower case
	require.Contains(t, r.Stderr, "Quota exceeded when processing the request of adding 2.0 MiB of storage resource", "%s", r)
	require.Contains(t, r.Stderr, "will exceed the configured upper limit of 1.0 MiB", "%s", r)

	// Raising the quota through the API lets the push through.
	list, err := hc.Quota.ListQuotas(ctx, quota.NewListQuotasParams().WithReference(ptrTo("project")).WithReferenceID(ptrTo(localID(t, hc))))
	require.NoError(t, err)
	require.Len(t, list.Payload, 1)
	_, err = hc.Quota.UpdateQuota(ctx, quota.NewUpdateQuotaParams().WithID(list.Payload[0].ID).
		WithHard(&models.QuotaUpdateReq{Hard: models.ResourceList{"storage": 4 << 20}}))
	require.NoError(t, err)
	c.must("oras", "push", "--plain-http", srv.Host+"/local/big:v1", "big.bin")
}

func localID(t *testing.T, hc *harbor.HarborAPI) string {
	res, err := hc.Project.GetProject(context.Background(), project.NewGetProjectParams().WithProjectNameOrID("local"))
	require.NoError(t, err)
	return strconv.FormatInt(int64(res.Payload.ProjectID), 10)
}

func ptrTo[T any](v T) *T { return &v }
