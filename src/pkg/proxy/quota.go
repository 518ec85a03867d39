package proxy

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// Quota keeps proxy-cache projects within their storage limits (package quota's Evictor).
type Quota interface {
	// MakeRoom evicts least recently pulled cached content of p until need more bytes fit, never the
	// content that holds protect; false when they cannot fit.
	MakeRoom(ctx context.Context, p *meta.Project, need int64, protect string) (bool, error)
	// Passthrough records (log, metric) content served without being stored.
	Passthrough(ctx context.Context, p *meta.Project, repo, digest string, size int64)
	// DropUnreferenced deletes the bytes of the digests nothing links or records.
	DropUnreferenced(ctx context.Context, digests ...string)
}

// maxRoomAttempts bounds how often a write refused by the quota (a concurrent fill took the room made
// for it) makes room again before the content is served without being stored.
const maxRoomAttempts = 3

// roomFor reports whether size more bytes of digest d may be stored in the project of repo: true when
// the project has no limit, already holds d, the size is not known yet (the link decides), or the quota
// made room; false when the content is to be served without being stored.
func (s *Service) roomFor(ctx context.Context, repo content.Repo, d string, size int64) bool {
	p := repo.Project
	if p.StorageLimit <= 0 || size < 0 {
		return true
	}
	if _, err := s.links.BlobLinkedInProject(ctx, p.ID, d); err == nil {
		return true
	}
	if s.opts.Quota == nil {
		return size <= p.StorageLimit // the link decides
	}
	ok, err := s.opts.Quota.MakeRoom(ctx, p, size, d)
	if err != nil {
		s.log.WarnContext(ctx, "quota: making room failed", "project", p.Name, "digest", d, "err", err)
		return true // the link decides
	}
	return ok
}

// passthrough records content of repo served without being stored and deletes bytes stored for it
// that nothing references.
func (s *Service) passthrough(ctx context.Context, repo content.Repo, d string, size int64, stored bool) {
	if s.opts.Quota == nil {
		s.log.WarnContext(ctx, "quota: served without storing", "repository", repo.Name, "digest", d, "size", size)
		return
	}
	s.opts.Quota.Passthrough(ctx, repo.Project, repo.Name, d, size)
	if stored {
		s.opts.Quota.DropUnreferenced(ctx, d)
	}
}

// linkFilled links a committed blob into repo, making room when the quota refuses (a concurrent fill
// took it). It reports false when the blob could not fit: it is then served but not kept.
func (s *Service) linkFilled(ctx context.Context, repo content.Repo, d digest.Digest, size int64) (bool, error) {
	for attempt := 1; ; attempt++ {
		err := s.links.LinkBlob(ctx, repo.Project.ID, repo.Name, d.String(), size)
		if !errors.Is(err, meta.ErrQuotaExceeded) {
			if err != nil {
				return false, fmt.Errorf("link blob: %w", err)
			}
			return true, nil
		}
		if attempt == maxRoomAttempts || s.opts.Quota == nil {
			return false, nil
		}
		if ok, err := s.opts.Quota.MakeRoom(ctx, repo.Project, size, d.String()); err != nil || !ok {
			return false, err
		}
	}
}

// recordPulled records an upstream manifest, making room when the quota refuses. It reports false when
// the manifest could not fit: it is then served but not kept.
func (s *Service) recordPulled(ctx context.Context, repo content.Repo, tag string, m *content.Manifest) (bool, error) {
	for attempt := 1; ; attempt++ {
		err := s.Local.RecordManifest(ctx, repo, tag, m)
		if !errors.Is(err, meta.ErrQuotaExceeded) {
			return err == nil, err
		}
		if attempt == maxRoomAttempts || s.opts.Quota == nil {
			return false, nil
		}
		if ok, err := s.opts.Quota.MakeRoom(ctx, repo.Project, int64(len(m.Body)), m.Digest.String()); err != nil || !ok {
			return false, err
		}
	}
}
