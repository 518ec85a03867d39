package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

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

// touchCounter is a meta.ArtifactStore that only records pull times; with gate set, each TouchPull waits
// for a value from it.
type touchCounter struct {
	meta.ArtifactStore // nil: other calls panic
	mu                 sync.Mutex
	touches            map[string]int
	gate               chan struct{}
}

func (c *touchCounter) TouchPull(_ context.Context, repo, d string, _ time.Time) error {
	if c.gate != nil {
		<-c.gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.touches[repo+"@"+d]++
	return nil
}

func TestPullRecorder(t *testing.T) {
	d1, d2 := digest.FromString("1"), digest.FromString("2")
	t0 := time.Unix(1700000000, 0)
	ctx := context.Background()

	t.Run("at most once per interval per artifact", func(t *testing.T) {
		c := &touchCounter{touches: map[string]int{}}
		s := New(nil, c, nil, Options{PullTimeInterval: time.Minute})
		s.pulls.record(ctx, "p/a", d1, t0)
		s.pulls.record(ctx, "p/a", d1, t0.Add(30*time.Second)) // skipped
		s.pulls.record(ctx, "p/b", d1, t0.Add(30*time.Second)) // another repository
		s.pulls.record(ctx, "p/a", d2, t0)                     // another artifact
		s.pulls.record(ctx, "p/a", d1, t0.Add(2*time.Minute))  // interval passed
		require.NoError(t, s.Close())
		s.pulls.record(ctx, "p/a", d1, t0.Add(time.Hour)) // closed: ignored
		require.Equal(t, map[string]int{"p/a@" + d1.String(): 2, "p/b@" + d1.String(): 1, "p/a@" + d2.String(): 1}, c.touches)
	})

	t.Run("saturated updates are dropped, not queued", func(t *testing.T) {
		c := &touchCounter{touches: map[string]int{}, gate: make(chan struct{})}
		s := New(nil, c, nil, Options{MaxPullTimeUpdates: 1, PullTimeInterval: -1})
		s.pulls.record(ctx, "p/a", d1, t0) // holds the only slot until the gate opens
		s.pulls.record(ctx, "p/a", d2, t0) // dropped: never blocks the caller
		close(c.gate)
		require.NoError(t, s.Close())
		require.Equal(t, map[string]int{"p/a@" + d1.String(): 1}, c.touches)
	})
}
