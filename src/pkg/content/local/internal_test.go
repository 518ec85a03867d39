package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

func TestCursor(t *testing.T) {
	d1, d2 := digest.FromString("1").String(), digest.FromString("2").String()
	if d1 > d2 {
		d1, d2 = d2, d1
	}
	t0 := time.Unix(1700000000, 123456789)
	newer := &meta.Artifact{Digest: d2, PushTime: t0.Add(time.Second)}
	a := &meta.Artifact{Digest: d1, PushTime: t0}
	b := &meta.Artifact{Digest: d2, PushTime: t0}
	older := &meta.Artifact{Digest: d1, PushTime: t0.Add(-time.Nanosecond)}
	zero := &meta.Artifact{Digest: d1}
	order := []*meta.Artifact{newer, a, b, older, zero}
	for i := range order {
		c := cursorOf(order[i])
		parsed, err := parseCursor(c.String())
		require.NoError(t, err)
		require.Equal(t, c, parsed)
		for j := range order {
			got := c.compare(cursorOf(order[j]))
			switch {
			case i < j:
				require.Negative(t, got, "%d before %d", i, j)
			case i > j:
				require.Positive(t, got, "%d after %d", i, j)
			default:
				require.Zero(t, got)
			}
		}
	}
	for _, bad := range []string{"", "x", "1.2", "1.2.sha256:zz", "a.0." + d1, "1.1000000000." + d1, "1.-1." + d1} {
		_, err := parseCursor(bad)
		require.True(t, errcode.IsCode(err, errcode.ErrPaginationInvalid), bad)
	}
}

func TestUploadBinding(t *testing.T) {
	const sid = "0123456789abcdef0123456789abcdef"
	s := New(nil, nil, nil, Options{UploadKey: []byte("server secret")})
	id := sid + "-" + s.binding("p/a", sid)
	got, err := s.sessionID("p/a", id)
	require.NoError(t, err)
	require.Equal(t, sid, got)
	sameKey := New(nil, nil, nil, Options{UploadKey: []byte("server secret")})
	got, err = sameKey.sessionID("p/a", id)
	require.NoError(t, err, "another node with the same key accepts the session")
	require.Equal(t, sid, got)

	// What a client could compute without the key: the unkeyed hash the binding used to be.
	unkeyed := sha256.Sum256([]byte("p/b\x00" + sid))
	otherKey := New(nil, nil, nil, Options{UploadKey: []byte("another secret")})
	for _, tc := range []struct {
		name     string
		s        *Service
		repo, id string
	}{
		{"another repository", s, "p/b", id},
		{"no binding", s, "p/a", sid},
		{"empty storage ID", s, "p/a", "-" + s.binding("p/a", "")},
		{"zero binding", s, "p/a", sid + "-" + strings.Repeat("0", bindingLen)},
		{"unkeyed hash", s, "p/b", sid + "-" + hex.EncodeToString(unkeyed[:])[:bindingLen]},
		{"another key", otherKey, "p/a", id},
		{"empty", s, "p/a", ""},
	} {
		_, err := tc.s.sessionID(tc.repo, tc.id)
		require.True(t, errcode.IsCode(err, errcode.ErrBlobUploadUnknown), tc.name)
	}
}

// pullSink is a meta.PullStore that keeps every batch and signals each on got.
type pullSink struct {
	mu      sync.Mutex
	batches [][]meta.Pull
	got     chan int
}

func (p *pullSink) RecordPulls(_ context.Context, pulls []meta.Pull) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	slices.SortFunc(pulls, func(a, b meta.Pull) int { return strings.Compare(a.Repository+a.Digest, b.Repository+b.Digest) })
	p.batches = append(p.batches, pulls)
	if p.got != nil {
		p.got <- len(pulls)
	}
	return nil
}

func TestPullBatcher(t *testing.T) {
	d1, d2 := digest.FromString("1"), digest.FromString("2")
	t0 := time.Unix(1700000000, 0).UTC()
	ctx := context.Background()

	t.Run("one batch: latest time and count per artifact", func(t *testing.T) {
		sink := &pullSink{}
		s := New(nil, nil, nil, Options{Pulls: sink, PullFlushInterval: time.Hour})
		s.pulls.record("p/a", d1, t0.Add(time.Minute), content.Pull)
		s.pulls.record("p/a", d1, t0, content.Pull) // earlier: the time stays, the count grows
		s.pulls.record("p/b", d1, t0, content.Pull)
		s.pulls.record("p/a", d2, t0, content.Pull)
		s.pulls.record("p/b", d1, t0.Add(time.Hour), content.Check) // a HEAD: the time, no count
		s.pulls.record("p/b", d2, t0, content.Internal)             // the registry's own read: nothing
		require.Empty(t, sink.batches, "nothing is written before a flush")
		require.NoError(t, s.FlushPulls(ctx))
		require.NoError(t, s.FlushPulls(ctx)) // nothing pending: no statement
		require.Equal(t, [][]meta.Pull{{
			{Repository: "p/a", Digest: d1.String(), Time: t0.Add(time.Minute), Count: 2},
			{Repository: "p/a", Digest: d2.String(), Time: t0, Count: 1},
			{Repository: "p/b", Digest: d1.String(), Time: t0.Add(time.Hour), Count: 1},
		}}, sink.batches)
	})

	t.Run("close writes what is pending and later pulls are ignored", func(t *testing.T) {
		sink := &pullSink{}
		s := New(nil, nil, nil, Options{Pulls: sink, PullFlushInterval: time.Hour})
		s.pulls.record("p/a", d1, t0, content.Pull)
		require.NoError(t, s.Close())
		s.pulls.record("p/a", d2, t0, content.Pull)
		require.NoError(t, s.Close())
		require.Equal(t, [][]meta.Pull{{{Repository: "p/a", Digest: d1.String(), Time: t0, Count: 1}}}, sink.batches)
	})

	t.Run("a full batch is flushed early, and beyond four batches pulls are dropped", func(t *testing.T) {
		sink := &pullSink{got: make(chan int, 10)}
		s := New(nil, nil, nil, Options{Pulls: sink, PullFlushInterval: time.Hour, MaxPendingPulls: 2})
		s.pulls.record("p/a", d1, t0, content.Pull)
		s.pulls.record("p/a", d2, t0, content.Pull) // the second distinct artifact starts a flush
		require.Equal(t, 2, <-sink.got)
		s.pulls.mu.Lock()
		for i := range 20 { // the loop is idle now: fill pending past its bound by hand
			s.pulls.pending[strconv.Itoa(i)] = &meta.Pull{}
		}
		s.pulls.mu.Unlock()
		s.pulls.record("p/c", d1, t0, content.Pull)
		s.pulls.mu.Lock()
		require.EqualValues(t, 1, s.pulls.dropped)
		_, held := s.pulls.pending["p/c@"+d1.String()]
		s.pulls.mu.Unlock()
		require.False(t, held)
		require.NoError(t, s.Close())
		require.Equal(t, 20, <-sink.got, "close writes the rest")
	})
}
