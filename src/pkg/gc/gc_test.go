package gc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content/local"
	"github.com/berth-registry/berth/src/pkg/gc"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// What no manifest references goes, once older than the grace period; what a manifest references stays
// and stays readable; a dry run and a run within the grace period delete nothing.
func TestCollect(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		shared := []byte("shared base layer")
		a, aBlobs := e.image("a", "v1", shared, []byte("only in a"))
		b, bBlobs := e.image("b", "v1", shared, []byte("only in b"))
		orphan := e.upload("a", []byte("uploaded, never referenced"))
		require.NoError(t, e.svc.DeleteManifest(ctx, e.repo("b"), b.String()))

		// Within the grace period: nothing.
		log := gc.NewLog(nil)
		res, err := e.coll.Collect(ctx, gc.Params{}, log)
		require.NoError(t, err)
		require.Zero(t, res.BlobsDeleted+res.LinksDeleted, log.String())

		dry := e.collect(gc.Params{DryRun: true})
		require.EqualValues(t, 4, dry.BlobsDeleted) // b's manifest, config and own layer, and the orphan
		require.True(t, e.stored(orphan) && e.stored(b))

		res = e.collect(gc.Params{Workers: 3})
		require.Equal(t, dry.BlobsDeleted, res.BlobsDeleted)
		require.EqualValues(t, 4, res.LinksDeleted) // b's three links (config and two layers) and the orphan's
		for _, d := range []digest.Digest{orphan, b, bBlobs[0], bBlobs[2]} {
			require.False(t, e.stored(d), d)
		}
		for _, d := range aBlobs {
			e.readable("a", d)
		}
		_, err = e.svc.StatBlob(ctx, e.repo("b"), bBlobs[1])
		require.Error(t, err, "b's link to the shared layer goes with b's manifest")
		m, err := e.svc.GetManifest(ctx, e.repo("a"), "v1")
		require.NoError(t, err)
		require.Equal(t, a, m.Digest)

		// A second run finds nothing left.
		res = e.collect(gc.Params{})
		require.Zero(t, res.BlobsDeleted+res.LinksDeleted)
	})
}

// The race the pins prevent: the mark did not see a manifest pushed after it, whose layer was uploaded
// long ago (an old, unreferenced link): the push pinned the layer, so the sweep keeps it.
func TestPushAfterMarkKeepsItsBlobs(t *testing.T) {
	backends(t, func(t *testing.T, newDB func(testing.TB) string) {
		var e *env
		layer := []byte("uploaded an hour ago")
		var pushed digest.Digest
		e = newEnv(t, newDB(t), func(s meta.GCStore) meta.GCStore {
			return &hooked{GCStore: s, beforeCondemn: func(string) {
				pushed = e.put("c", "v1", local.MediaTypeOCIManifest, map[string]any{"schemaVersion": 2,
					"config": desc{"application/vnd.oci.image.config.v1+json", digest.FromBytes(layer).String(), int64(len(layer))}})
			}}
		})
		e.upload("c", layer)
		res := e.collect(gc.Params{})
		require.NotEmpty(t, pushed)
		require.Zero(t, res.BlobsDeleted)
		require.EqualValues(t, 1, res.Pinned)
		e.readable("c", digest.FromBytes(layer))
		// Its pin lapses; the manifest now references it: still kept.
		e.clock.Set(time.Now().Add(3 * time.Hour))
		res = e.collect(gc.Params{})
		require.Zero(t, res.BlobsDeleted)
		e.readable("c", digest.FromBytes(layer))
	})
}

// The other race: the sweep condemned a blob (its last link gone), and before it removes the bytes an
// upload of the same content commits. The upload's pin removes the condemned bytes itself and writes
// them again; the collector then finds no tombstone and leaves the new bytes.
func TestUploadOfCondemnedBlob(t *testing.T) {
	backends(t, func(t *testing.T, newDB func(testing.TB) string) {
		var e *env
		data := []byte("condemned, then uploaded again")
		e = newEnv(t, newDB(t), func(s meta.GCStore) meta.GCStore {
			return &hooked{GCStore: s, beforeFinish: func(d string) {
				require.Equal(t, digest.FromBytes(data).String(), d)
				e.upload("d", data)
			}}
		})
		e.upload("d", data)
		res := e.collect(gc.Params{})
		require.Zero(t, res.BlobsDeleted, "the collector must not remove bytes a writer re-committed")
		e.readable("d", digest.FromBytes(data))
	})
}

// A cross-repository mount of a blob condemned meanwhile answers BLOB_UNKNOWN (the client uploads
// instead); a mount pinned first keeps the blob.
func TestMountOfCondemnedBlob(t *testing.T) {
	backends(t, func(t *testing.T, newDB func(testing.TB) string) {
		var e *env
		var mountErr error
		data := []byte("mounted while collected")
		e = newEnv(t, newDB(t), func(s meta.GCStore) meta.GCStore {
			return &hooked{GCStore: s, beforeFinish: func(string) {
				_, mountErr = e.svc.MountBlob(context.Background(), e.repo("src"), e.repo("dst"), digest.FromBytes(data))
			}}
		})
		e.upload("src", data)
		e.collect(gc.Params{})
		require.Error(t, mountErr)
		require.Contains(t, mountErr.Error(), "unknown")
		require.False(t, e.stored(digest.FromBytes(data)))
	})
}

// delete_untagged: the children of a tagged index and the referrers of a tagged artifact stay; an
// untagged index goes with its untagged children and referrers; their blobs go in the same run.
func TestDeleteUntagged(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		child := func(name string) desc {
			d, _ := e.image("r", "", []byte(name))
			m, err := e.svc.GetManifest(ctx, e.repo("r"), d.String())
			require.NoError(t, err)
			return desc{local.MediaTypeOCIManifest, d.String(), int64(len(m.Body))}
		}
		index := func(ref string, children ...desc) digest.Digest {
			return e.put("r", ref, local.MediaTypeOCIIndex, map[string]any{"schemaVersion": 2, "mediaType": local.MediaTypeOCIIndex, "manifests": children})
		}
		referrer := func(subject digest.Digest) digest.Digest {
			cfg := []byte("{}")
			c := e.upload("r", cfg)
			return e.put("r", "", local.MediaTypeOCIManifest, map[string]any{"schemaVersion": 2, "mediaType": local.MediaTypeOCIManifest,
				"artifactType": "application/vnd.example.sig", "config": desc{"application/vnd.oci.empty.v1+json", c.String(), 2},
				"layers": []desc{}, "subject": desc{local.MediaTypeOCIIndex, subject.String(), 1}})
		}
		kept1, kept2 := child("kept child 1"), child("kept child 2")
		tagged := index("v1", kept1, kept2)
		keptSig := referrer(tagged)
		gone1 := child("gone child")
		untagged := index("", gone1)
		goneSig := referrer(untagged)
		loose, _ := e.image("r", "", []byte("loose untagged image"))

		res := e.collect(gc.Params{DeleteUntagged: true})
		require.EqualValues(t, 4, res.ArtifactsDeleted)
		for _, d := range []string{kept1.Digest, kept2.Digest, tagged.String(), keptSig.String()} {
			_, err := e.store.GetArtifact(ctx, "library/r", d)
			require.NoError(t, err, d)
		}
		for _, d := range []digest.Digest{digest.Digest(gone1.Digest), untagged, goneSig, loose} {
			_, err := e.store.GetArtifact(ctx, "library/r", d.String())
			require.ErrorIs(t, err, meta.ErrNotFound, d)
			require.False(t, e.stored(d), "manifest bytes of %s", d)
		}
		_, err := e.svc.StatBlob(ctx, e.repo("r"), mustLayer(t, e, "loose untagged image"))
		require.Error(t, err)
	})
}

func mustLayer(t *testing.T, _ *env, data string) digest.Digest {
	t.Helper()
	return digest.FromString(data)
}

// The log is bounded, says how much it dropped, and keeps its last lines (the summary).
func TestLogBounded(t *testing.T) {
	l := gc.NewLog(nil)
	line := strings.Repeat("x", 1000)
	for range 2 * gc.MaxLogBytes / 1000 {
		l.Printf("%s", line)
	}
	l.Printf("the summary")
	s := l.String()
	require.LessOrEqual(t, len(s), gc.MaxLogBytes)
	require.Contains(t, s, "lines not kept")
	require.True(t, strings.HasSuffix(s, " the summary\n"), "the last line is kept")
}

func TestParams(t *testing.T) {
	p, err := gc.ParseParams(`{"delete_untagged":true,"dry_run":true,"workers":3}`)
	require.NoError(t, err)
	require.Equal(t, gc.Params{DeleteUntagged: true, DryRun: true, Workers: 3}, p)
	_, err = gc.ParseParams(`{"workers":6}`)
	require.Error(t, err)
	for typ, want := range map[string]string{"Hourly": "0 0 * * * *", "Daily": "0 0 0 * * *", "Weekly": "0 0 0 * * 0", "None": ""} {
		got, err := gc.ScheduleCron(typ, "")
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err = gc.ScheduleCron("Custom", "not cron")
	require.Error(t, err)
	_, err = gc.ScheduleCron("Sometimes", "")
	require.Error(t, err)
	at := time.Date(2026, 1, 1, 10, 30, 0, 0, time.UTC)
	require.Equal(t, time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC), gc.NextFire("0 0 * * * *", at))
}
