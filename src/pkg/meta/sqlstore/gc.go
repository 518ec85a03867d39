package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/beego/beego/v2/client/orm"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// The garbage collection protocol's database side (docs/gc.md). Every step that must not interleave
// with another on the same digest runs in a transaction that first takes the digest's lock: on
// PostgreSQL a transaction-scoped advisory lock (dialect.blobLock), on SQLite nothing, since its write
// transactions (BEGIN IMMEDIATE) already run one at a time, across processes too.

var _ meta.GCStore = (*store)(nil)

// lockBlob takes the digest's lock for the rest of tx.
func (s *store) lockBlob(ctx context.Context, tx orm.TxOrmer, digest string) error {
	if s.d.blobLock == "" {
		return nil
	}
	var void []string // pg_advisory_xact_lock returns void
	_, err := queryRows(ctx, tx, &void, s.d.blobLock, digest)
	return err
}

func exists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var n []int64
	if _, err := queryRows(ctx, q, &n, `SELECT COUNT(*) FROM (`+query+` LIMIT 1) x`, args...); err != nil {
		return false, err
	}
	return n[0] > 0, nil
}

// PinBlobs locks the digests in sorted order, so two pinners never wait for each other in a cycle.
func (s *store) PinBlobs(ctx context.Context, digests []string, until time.Time, remove func(digest string) error) error {
	sorted := slices.Clone(digests)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	err := s.withTx(ctx, func(tx orm.TxOrmer) error {
		for _, d := range sorted {
			if d == "" {
				continue
			}
			if err := s.lockBlob(ctx, tx, d); err != nil {
				return err
			}
			n, err := exec(ctx, tx, `DELETE FROM blob_tombstone WHERE digest = ?`, d)
			if err != nil {
				return err
			}
			if n > 0 {
				// Condemned: finish the collector's work before anyone may rely on the bytes. Should the
				// commit fail, the tombstone comes back and the bytes are gone: still condemned, consistent.
				if err := remove(d); err != nil {
					return fmt.Errorf("remove condemned blob %s: %w", d, err)
				}
			}
			if _, err := exec(ctx, tx,
				`INSERT INTO blob_pin (digest, expires) VALUES (?, ?)
				 ON CONFLICT (digest) DO UPDATE SET expires = excluded.expires WHERE blob_pin.expires < excluded.expires`,
				d, toDBTime(until)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: pin %d blobs: %w", len(sorted), err)
	}
	return nil
}

func (s *store) UnpinBlobs(ctx context.Context, digests []string, until, at time.Time) error {
	for len(digests) > 0 {
		batch := digests[:min(len(digests), maxTagQuery)]
		digests = digests[len(batch):]
		args := []any{toDBTime(at), toDBTime(until)}
		for _, d := range batch {
			args = append(args, d)
		}
		if _, err := exec(ctx, s.w, `UPDATE blob_pin SET expires = ? WHERE expires = ? AND digest IN (?`+
			strings.Repeat(", ?", len(batch)-1)+`)`, args...); err != nil {
			return fmt.Errorf("meta: unpin blobs: %w", err)
		}
	}
	return nil
}

func (s *store) ListGCArtifacts(ctx context.Context, afterID int64, n int) ([]meta.GCArtifact, error) {
	type row struct {
		ID           int64  `orm:"column(id)"`
		RepositoryID int64  `orm:"column(repository_id)"`
		Repository   string `orm:"column(repository)"`
		Digest       string `orm:"column(digest)"`
		MediaType    string `orm:"column(media_type)"`
		Subject      string `orm:"column(subject_digest)"`
		Tagged       int64  `orm:"column(tagged)"`
		PushTime     int64  `orm:"column(push_time)"`
	}
	limit, args := s.d.limitOffset(n, 0, []any{afterID})
	var rows []row
	if _, err := queryRows(ctx, s.r, &rows,
		`SELECT a.id AS id, a.repository_id AS repository_id, r.name AS repository, a.digest AS digest,
			a.media_type AS media_type, a.subject_digest AS subject_digest, a.push_time AS push_time,
			(SELECT COUNT(*) FROM tag t WHERE t.artifact_id = a.id) AS tagged
		 FROM artifact a JOIN repository r ON r.id = a.repository_id
		 WHERE a.id > ? ORDER BY a.id`+limit, args...); err != nil {
		return nil, fmt.Errorf("meta: list artifacts for gc: %w", err)
	}
	out := make([]meta.GCArtifact, len(rows))
	for i, r := range rows {
		out[i] = meta.GCArtifact{ID: r.ID, RepositoryID: r.RepositoryID, Repository: r.Repository, Digest: r.Digest,
			MediaType: r.MediaType, Subject: r.Subject, Tagged: r.Tagged > 0, PushTime: fromDBTime(r.PushTime)}
	}
	return out, nil
}

func (s *store) ListGCBlobLinks(ctx context.Context, afterDigest string, afterRepo int64, n int) ([]meta.GCBlobLink, error) {
	type row struct {
		RepositoryID int64  `orm:"column(repository_id)"`
		Digest       string `orm:"column(digest)"`
		CreationTime int64  `orm:"column(creation_time)"`
	}
	limit, args := s.d.limitOffset(n, 0, []any{afterDigest, afterDigest, afterRepo})
	var rows []row
	if _, err := queryRows(ctx, s.r, &rows,
		`SELECT repository_id, digest, creation_time FROM blob_link
		 WHERE digest > ? OR (digest = ? AND repository_id > ?) ORDER BY digest, repository_id`+limit, args...); err != nil {
		return nil, fmt.Errorf("meta: list blob links for gc: %w", err)
	}
	out := make([]meta.GCBlobLink, len(rows))
	for i, r := range rows {
		out[i] = meta.GCBlobLink{RepositoryID: r.RepositoryID, Digest: r.Digest, CreationTime: fromDBTime(r.CreationTime)}
	}
	return out, nil
}

// pinnedSince is the condition "digest ? is pinned past cutoff ?".
const pinnedSince = `SELECT 1 FROM blob_pin WHERE digest = ? AND expires > ?`

func (s *store) DeleteUntaggedArtifact(ctx context.Context, id int64, digest string, cutoff time.Time) (bool, error) {
	var n int64
	err := s.withTx(ctx, func(tx orm.TxOrmer) error {
		if err := s.lockBlob(ctx, tx, digest); err != nil {
			return err
		}
		var err error
		n, err = exec(ctx, tx,
			`DELETE FROM artifact WHERE id = ? AND digest = ? AND push_time < ?
			 AND NOT EXISTS (SELECT 1 FROM tag t WHERE t.artifact_id = artifact.id)
			 AND NOT EXISTS (`+pinnedSince+`)`,
			id, digest, toDBTime(cutoff), digest, toDBTime(cutoff))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("meta: delete untagged artifact %d: %w", id, err)
	}
	return n > 0, nil
}

func (s *store) CondemnBlob(ctx context.Context, digest string, repos []int64, cutoff time.Time, bytes bool) (int64, bool, error) {
	res, err := s.CondemnBlobs(ctx, []meta.GCCandidate{{Digest: digest, Repos: repos, Bytes: bytes}}, cutoff)
	if err != nil {
		return 0, false, err
	}
	return res[0].Links, res[0].Condemned, nil
}

func (s *store) CondemnBlobs(ctx context.Context, cands []meta.GCCandidate, cutoff time.Time) ([]meta.GCCondemned, error) {
	var out []meta.GCCondemned
	err := s.withTx(ctx, func(tx orm.TxOrmer) error {
		out = make([]meta.GCCondemned, len(cands))
		for i, c := range cands {
			var err error
			if out[i], err = s.condemn(ctx, tx, c, cutoff); err != nil {
				return fmt.Errorf("%s: %w", c.Digest, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("meta: condemn blobs: %w", err)
	}
	return out, nil
}

// condemn is one candidate's step of CondemnBlobs.
func (s *store) condemn(ctx context.Context, tx orm.TxOrmer, c meta.GCCandidate, cutoff time.Time) (meta.GCCondemned, error) {
	var res meta.GCCondemned
	if err := s.lockBlob(ctx, tx, c.Digest); err != nil {
		return res, err
	}
	pinned, err := exists(ctx, tx, pinnedSince, c.Digest, toDBTime(cutoff))
	if err != nil || pinned {
		return res, err
	}
	for repos := c.Repos; len(repos) > 0; {
		batch := repos[:min(len(repos), maxTagQuery)]
		repos = repos[len(batch):]
		args := []any{c.Digest, toDBTime(cutoff)}
		for _, id := range batch {
			args = append(args, id)
		}
		n, err := exec(ctx, tx, `DELETE FROM blob_link WHERE digest = ? AND creation_time < ? AND repository_id IN (?`+
			strings.Repeat(", ?", len(batch)-1)+`)`, args...)
		if err != nil {
			return res, err
		}
		res.Links += n
	}
	if !c.Bytes {
		return res, nil
	}
	for _, q := range []string{`SELECT 1 FROM blob_link WHERE digest = ?`, `SELECT 1 FROM artifact WHERE digest = ?`} {
		if used, err := exists(ctx, tx, q, c.Digest); err != nil || used {
			return res, err
		}
	}
	if _, err := exec(ctx, tx, `INSERT INTO blob_tombstone (digest, creation_time) VALUES (?, ?)
		ON CONFLICT (digest) DO NOTHING`, c.Digest, toDBTime(now())); err != nil {
		return res, err
	}
	res.Condemned = true
	return res, nil
}

func (s *store) FinishCondemned(ctx context.Context, digest string, remove func() error) (bool, error) {
	done, err := s.FinishCondemnedAll(ctx, []string{digest}, func(string) error { return remove() })
	if err != nil {
		return false, err
	}
	return done[0], nil
}

func (s *store) FinishCondemnedAll(ctx context.Context, digests []string, remove func(digest string) error) ([]bool, error) {
	var done []bool
	err := s.withTx(ctx, func(tx orm.TxOrmer) error {
		done = make([]bool, len(digests))
		for i, d := range digests {
			if err := s.lockBlob(ctx, tx, d); err != nil {
				return err
			}
			n, err := exec(ctx, tx, `DELETE FROM blob_tombstone WHERE digest = ?`, d)
			if err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			// Should the commit fail after this, the tombstone comes back and the bytes are gone:
			// still condemned, consistent.
			if err := remove(d); err != nil {
				return fmt.Errorf("%s: %w", d, err)
			}
			done[i] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("meta: remove condemned blobs: %w", err)
	}
	return done, nil
}

func (s *store) ListCondemned(ctx context.Context) ([]string, error) {
	out := []string{}
	if _, err := queryRows(ctx, s.r, &out, `SELECT digest FROM blob_tombstone ORDER BY digest`); err != nil {
		return nil, fmt.Errorf("meta: list tombstones: %w", err)
	}
	return out, nil
}

func (s *store) PurgePins(ctx context.Context, t time.Time) (int64, error) {
	n, err := exec(ctx, s.w, `DELETE FROM blob_pin WHERE expires < ?`, toDBTime(t))
	if err != nil {
		return 0, fmt.Errorf("meta: purge pins: %w", err)
	}
	return n, nil
}
