// Package metatest holds the fixtures the tests of the caches over a meta.Store share: a real store
// opened for one test, and a wrapper that counts the reads a cache exists to save.
package metatest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
)

// Open opens the store at url (a SQLite path or a PostgreSQL URL, see sqltest), closed when the test
// ends; a failed close fails the test.
func Open(t testing.TB, url string) meta.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// Counting wraps a real store: Reads counts the cached reads that reach it (GetArtifact, ResolveTag,
// ListReferrers), and a hook set with AfterRead runs once after the next such read got the database's
// answer and before that answer is returned, to race writes against reads. Safe for concurrent use.
type Counting struct {
	meta.Store
	Reads atomic.Int64

	mu    sync.Mutex
	after func()
}

var _ meta.Store = (*Counting)(nil)

// AfterRead sets the hook the next read runs once.
func (c *Counting) AfterRead(f func()) {
	c.mu.Lock()
	c.after = f
	c.mu.Unlock()
}

// GetArtifact counts and reads through.
func (c *Counting) GetArtifact(ctx context.Context, repo, digest string) (*meta.Artifact, error) {
	a, err := c.Store.GetArtifact(ctx, repo, digest)
	c.read()
	return a, err
}

// ResolveTag counts and reads through.
func (c *Counting) ResolveTag(ctx context.Context, repo, tag string) (*meta.Artifact, error) {
	a, err := c.Store.ResolveTag(ctx, repo, tag)
	c.read()
	return a, err
}

// ListReferrers counts and reads through.
func (c *Counting) ListReferrers(ctx context.Context, repo, subject, artifactType string) ([]*meta.Artifact, error) {
	arts, err := c.Store.ListReferrers(ctx, repo, subject, artifactType)
	c.read()
	return arts, err
}

// read counts a read and runs the hook, once.
func (c *Counting) read() {
	c.Reads.Add(1)
	c.mu.Lock()
	f := c.after
	c.after = nil
	c.mu.Unlock()
	if f != nil {
		f()
	}
}
