package sqlstore

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// The database half of the garbage collection protocol (docs/gc.md), on both databases.
func testGCProtocol(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	layer, other := dg("layer"), dg("other")
	require.NoError(t, s.LinkBlob(ctx, pid, "library/a", layer, 5))
	require.NoError(t, s.LinkBlob(ctx, pid, "library/b", layer, 5))
	require.NoError(t, s.LinkBlob(ctx, pid, "library/a", other, 5))
	links, err := s.ListGCBlobLinks(ctx, "", 0, 0)
	require.NoError(t, err)
	require.Len(t, links, 3)
	// Paging by (digest, repository) sees each link once.
	var paged []meta.GCBlobLink
	d, r := "", int64(0)
	for {
		page, err := s.ListGCBlobLinks(ctx, d, r, 1)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		d, r = page[0].Digest, page[0].RepositoryID
	}
	require.Equal(t, links, paged)
	repoA, repoB := links[0].RepositoryID, links[1].RepositoryID
	if links[0].Digest != layer {
		repoA, repoB = links[1].RepositoryID, links[2].RepositoryID
	}
	future := time.Now().Add(time.Hour)
	past := time.Now().Add(-time.Hour)

	// Links younger than the cutoff stay.
	n, condemned, err := s.CondemnBlob(ctx, layer, []int64{repoA, repoB}, past, true)
	require.NoError(t, err)
	require.Zero(t, n)
	require.False(t, condemned)

	// A pin past the cutoff keeps everything; a lapsed one does not.
	require.NoError(t, s.PinBlobs(ctx, []string{layer}, future, nil))
	n, condemned, err = s.CondemnBlob(ctx, layer, []int64{repoA, repoB}, future.Add(-time.Minute), true)
	require.NoError(t, err)
	require.Zero(t, n)
	require.False(t, condemned)

	// One repository's link goes; the other holds the bytes.
	cutoff := future.Add(time.Minute)
	n, condemned, err = s.CondemnBlob(ctx, layer, []int64{repoA}, cutoff, true)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.False(t, condemned)
	// The last link goes: condemned, tombstone listed.
	n, condemned, err = s.CondemnBlob(ctx, layer, []int64{repoB}, cutoff, true)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.True(t, condemned)
	left, err := s.ListCondemned(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{layer}, left)

	// A writer pinning a condemned digest removes the bytes itself first, once.
	var removed []string
	require.NoError(t, s.PinBlobs(ctx, []string{layer, layer, other}, future, func(d string) error {
		removed = append(removed, d)
		return nil
	}))
	require.Equal(t, []string{layer}, removed)
	left, err = s.ListCondemned(ctx)
	require.NoError(t, err)
	require.Empty(t, left)
	// ... so the collector's second step finds nothing left to do.
	calls := 0
	done, err := s.FinishCondemned(ctx, layer, func() error { calls++; return nil })
	require.NoError(t, err)
	require.False(t, done)
	require.Zero(t, calls)

	// A manifest of a digest keeps its bytes even without links.
	manifest := dg("manifest")
	push(t, s, pid, "library/a", &meta.Artifact{Digest: manifest, MediaType: mtManifest, Size: 2, PushTime: past})
	_, condemned, err = s.CondemnBlob(ctx, manifest, nil, cutoff, true)
	require.NoError(t, err)
	require.False(t, condemned)

	// The collector's second step runs remove once and drops the tombstone.
	orphan := dg("orphan")
	_, condemned, err = s.CondemnBlob(ctx, orphan, nil, cutoff, true)
	require.NoError(t, err)
	require.True(t, condemned)
	for _, want := range []bool{true, false} {
		done, err := s.FinishCondemned(ctx, orphan, func() error { calls++; return nil })
		require.NoError(t, err)
		require.Equal(t, want, done)
	}
	require.Equal(t, 1, calls)

	// Unpinning ends exactly the pin taken with that expiry; the collector may then take the blob.
	unpinned := dg("unpinned")
	require.NoError(t, s.PinBlobs(ctx, []string{unpinned}, future, nil))
	require.NoError(t, s.UnpinBlobs(ctx, []string{unpinned}, future.Add(time.Microsecond), past)) // not ours
	_, condemned, err = s.CondemnBlob(ctx, unpinned, nil, time.Now(), true)
	require.NoError(t, err)
	require.False(t, condemned)
	require.NoError(t, s.UnpinBlobs(ctx, []string{unpinned}, future, past))
	_, condemned, err = s.CondemnBlob(ctx, unpinned, nil, time.Now(), true)
	require.NoError(t, err)
	require.True(t, condemned)

	// Pins lapse and are purged.
	purged, err := s.PurgePins(ctx, future.Add(time.Second))
	require.NoError(t, err)
	require.EqualValues(t, 3, purged)
}

// Pinning and condemning from several goroutines: a pin either finds the blob uncondemned or removes
// the bytes itself; the bytes are never removed while a pin holds.
func testGCPinRace(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	digests := []string{dg("contended-0"), dg("contended-1")}
	var present [2]atomic.Bool // "the bytes of digests[i] exist"
	var broken atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for range 15 {
				if w < 2 {
					// A writer: pin, store the bytes, check they stay while pinned, then let the pin lapse.
					d := digests[w]
					require.NoError(t, s.PinBlobs(ctx, []string{d}, time.Now().Add(time.Hour), func(string) error {
						present[w].Store(false)
						return nil
					}))
					present[w].Store(true)
					time.Sleep(time.Millisecond)
					if !present[w].Load() {
						broken.Add(1)
					}
					_, err := exec(ctx, s.(*store).w, `UPDATE blob_pin SET expires = 0 WHERE digest = ?`, d)
					require.NoError(t, err)
					continue
				}
				for i, d := range digests {
					_, condemned, err := s.CondemnBlob(ctx, d, nil, time.Now(), true)
					require.NoError(t, err)
					if condemned {
						_, err := s.FinishCondemned(ctx, d, func() error { present[i].Store(false); return nil })
						require.NoError(t, err)
					}
				}
			}
		})
	}
	wg.Wait()
	require.Zero(t, broken.Load(), "bytes removed while a writer held a pin")
}

func testGCUntagged(t *testing.T, newDB dbFactory) {
	ctx, s, pid := storeWithProject(t, newDB, "library")
	past := time.Now().Add(-time.Hour)
	put := func(name string, tags ...string) *meta.Artifact {
		a := &meta.Artifact{Digest: dg(name), MediaType: mtManifest, Size: 2, PushTime: past}
		push(t, s, pid, "library/a", a, tags...)
		return a
	}
	tagged, untagged, pinned, fresh := put("tagged", "v1"), put("untagged"), put("pinned"), put("fresh")
	cutoff := time.Now().Add(-time.Minute)
	require.NoError(t, s.PinBlobs(ctx, []string{pinned.Digest}, time.Now().Add(time.Hour), nil))
	arts, err := s.ListGCArtifacts(ctx, 0, 0)
	require.NoError(t, err)
	require.Len(t, arts, 4)
	require.True(t, arts[0].Tagged)
	require.Equal(t, "library/a", arts[0].Repository)

	for _, tc := range []struct {
		a      *meta.Artifact
		cutoff time.Time
		want   bool
	}{
		{tagged, cutoff, false}, {pinned, cutoff, false}, {fresh, past.Add(-time.Second), false}, {untagged, cutoff, true},
	} {
		ok, err := s.DeleteUntaggedArtifact(ctx, tc.a.ID, tc.a.Digest, tc.cutoff)
		require.NoError(t, err)
		require.Equal(t, tc.want, ok, tc.a.Digest)
	}
	arts, err = s.ListGCArtifacts(ctx, 0, 0)
	require.NoError(t, err)
	require.Len(t, arts, 3)
}

func testGCJobs(t *testing.T, newDB dbFactory) {
	ctx := t.Context()
	s := newStore(t, newDB)
	// One lease: the holder renews it, others wait until it lapses or is released.
	ok, err := s.AcquireGCLease(ctx, "a", time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.AcquireGCLease(ctx, "b", time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.False(t, ok)
	ok, err = s.RenewGCLease(ctx, "b", time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.False(t, ok)
	ok, err = s.RenewGCLease(ctx, "a", time.Now().Add(-time.Second)) // lapses
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.AcquireGCLease(ctx, "b", time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.ReleaseGCLease(ctx, "a")) // not the holder: nothing
	ok, err = s.AcquireGCLease(ctx, "a", time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, s.ReleaseGCLease(ctx, "b"))

	// Exactly one of many concurrent acquirers wins.
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ok, err := s.AcquireGCLease(ctx, string(rune('c'+i)), time.Now().Add(time.Minute))
			require.NoError(t, err)
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, wins.Load())

	// History and logs.
	for i := range 3 {
		e := &meta.GCExecution{Kind: meta.GCKindManual, Status: meta.GCRunning, Parameters: `{"dry_run":true}`}
		require.NoError(t, s.CreateGCExecution(ctx, e))
		require.EqualValues(t, i+1, e.ID)
	}
	text := "line 1\nline 2\n"
	require.NoError(t, s.UpdateGCExecution(ctx, 2, meta.GCSuccess, &text))
	require.ErrorIs(t, s.UpdateGCExecution(ctx, 9, meta.GCSuccess, nil), meta.ErrNotFound)
	e, err := s.GetGCExecution(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, meta.GCSuccess, e.Status)
	require.Equal(t, `{"dry_run":true}`, e.Parameters)
	got, err := s.GCExecutionLog(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, text, got)
	_, err = s.GCExecutionLog(ctx, 9)
	require.ErrorIs(t, err, meta.ErrNotFound)
	list, total, err := s.ListGCExecutions(ctx, 1, 1)
	require.NoError(t, err)
	require.EqualValues(t, 3, total)
	require.Len(t, list, 1)
	require.EqualValues(t, 2, list[0].ID) // newest first

	// The schedule, and each fire time claimed once.
	_, err = s.GetGCSchedule(ctx)
	require.ErrorIs(t, err, meta.ErrNotFound)
	require.NoError(t, s.PutGCSchedule(ctx, &meta.GCSchedule{Type: "Hourly", Cron: "0 0 * * * *"}))
	sc, err := s.GetGCSchedule(ctx)
	require.NoError(t, err)
	require.Equal(t, "Hourly", sc.Type)
	require.Equal(t, "{}", sc.Parameters)
	fire := time.Now().Add(time.Hour)
	ok, err = s.ClaimGCFire(ctx, fire)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.ClaimGCFire(ctx, fire)
	require.NoError(t, err)
	require.False(t, ok)
	ok, err = s.ClaimGCFire(ctx, time.Now().Add(-time.Hour)) // before the schedule was set
	require.NoError(t, err)
	require.False(t, ok)
}
