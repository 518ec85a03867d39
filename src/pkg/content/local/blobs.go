package local

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/storage"
)

func blobUnknown(d digest.Digest) error {
	return errcode.ErrBlobUnknown.WithMessage("blob %s unknown to repository", d).
		WithDetail(map[string]string{"digest": d.String()})
}

// StatBlob returns the size of a blob linked in repo, or BLOB_UNKNOWN.
func (s *Service) StatBlob(ctx context.Context, repo content.Repo, d digest.Digest) (int64, error) {
	if _, err := parseDigest(d.String()); err != nil {
		return 0, err
	}
	size, err := s.links.BlobLinked(ctx, repo.Name, d.String())
	if isNotFound(err) {
		return 0, blobUnknown(d)
	}
	if err != nil {
		return 0, fmt.Errorf("stat blob %s in %s: %w", d, repo.Name, err)
	}
	return size, nil
}

// OpenBlob opens a blob linked in repo. The result implements io.Seeker.
func (s *Service) OpenBlob(ctx context.Context, repo content.Repo, d digest.Digest) (content.BlobContent, error) {
	if _, err := s.StatBlob(ctx, repo, d); err != nil {
		return nil, err
	}
	b, err := s.blobs.Open(ctx, d)
	if isNotFound(err) {
		return nil, blobUnknown(d) // linked but gone: report it as missing rather than fail the pull
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return b, nil
}

var _ content.BlobContent = (storage.Blob)(nil)

// DeleteBlob unlinks the blob from repo. Its bytes stay for other repositories (garbage collection's job).
func (s *Service) DeleteBlob(ctx context.Context, repo content.Repo, d digest.Digest) error {
	if _, err := s.StatBlob(ctx, repo, d); err != nil {
		return err
	}
	err := s.links.UnlinkBlob(ctx, repo.Name, d.String())
	if isNotFound(err) {
		return blobUnknown(d)
	}
	if err != nil {
		return fmt.Errorf("unlink blob %s in %s: %w", d, repo.Name, err)
	}
	return nil
}

// MountBlob links into repo a blob that from links, or, when from.Name is "", that any repository of
// from.Project links. It returns BLOB_UNKNOWN when from lacks it (or its bytes are gone). Whether the
// caller may read from is the caller's check.
func (s *Service) MountBlob(ctx context.Context, from, repo content.Repo, d digest.Digest) (int64, error) {
	if repo.Project == nil {
		return 0, fmt.Errorf("MountBlob: repository %s has no project", repo.Name)
	}
	unpin, err := s.pin(ctx, d)
	if err != nil {
		return 0, err
	}
	defer unpin()
	size, err := s.statSource(ctx, from, d)
	if err != nil {
		return 0, err
	}
	if _, err := s.blobs.Stat(ctx, d); err != nil {
		if isNotFound(err) {
			return 0, blobUnknown(d)
		}
		return 0, fmt.Errorf("stat blob %s: %w", d, err)
	}
	if err := s.links.LinkBlob(ctx, repo.Project.ID, repo.Name, d.String(), size); err != nil {
		return 0, recordError(repo.Name, err, "linking blob "+d.String())
	}
	return size, nil
}

// statSource returns the size of the blob a mount takes from from: linked in from, or in any repository
// of from.Project when from.Name is "".
func (s *Service) statSource(ctx context.Context, from content.Repo, d digest.Digest) (int64, error) {
	if from.Name != "" {
		return s.StatBlob(ctx, from, d)
	}
	if from.Project == nil {
		return 0, fmt.Errorf("MountBlob: a source without a name needs a project")
	}
	if _, err := parseDigest(d.String()); err != nil {
		return 0, err
	}
	size, err := s.links.BlobLinkedInProject(ctx, from.Project.ID, d.String())
	if isNotFound(err) {
		return 0, blobUnknown(d)
	}
	if err != nil {
		return 0, fmt.Errorf("stat blob %s in project %s: %w", d, from.Project.Name, err)
	}
	return size, nil
}
