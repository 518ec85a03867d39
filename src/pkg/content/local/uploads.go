package local

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// Upload session IDs handed to clients are "<storage session ID>-<binding>", where binding is an
// HMAC-SHA256, keyed with Options.UploadKey, of the repository name and the storage ID. A session
// therefore only works in the repository it was started in, and nobody without the key can make the
// binding of a session ID for another repository, even knowing the ID.

const bindingLen = 32 // hex characters: 128 bits of the MAC

// binding returns the MAC that binds a storage session ID to repo.
func (s *Service) binding(repo, storageID string) string {
	m := hmac.New(sha256.New, s.uploadKey)
	m.Write([]byte(repo))
	m.Write([]byte{0})
	m.Write([]byte(storageID))
	return hex.EncodeToString(m.Sum(nil))[:bindingLen]
}

// sessionID returns the storage session ID an external ID names in repo, or BLOB_UPLOAD_UNKNOWN.
func (s *Service) sessionID(repo, id string) (string, error) {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 || len(id)-i-1 != bindingLen || !hmac.Equal([]byte(s.binding(repo, id[:i])), []byte(id[i+1:])) {
		return "", errcode.ErrBlobUploadUnknown.WithMessage("upload %q unknown to repository %s", id, repo)
	}
	return id[:i], nil
}

func uploadError(repo, id string, err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errcode.ErrBlobUploadUnknown.WithMessage("upload %q unknown to repository %s", id, repo)
	case errors.Is(err, storage.ErrOffsetMismatch):
		return errcode.ErrRangeInvalid.WithMessage("chunk does not start where the upload ends")
	case errors.Is(err, storage.ErrDigestMismatch):
		return errcode.ErrDigestInvalid.New()
	}
	return fmt.Errorf("upload %s in %s: %w", id, repo, err)
}

// StartUpload opens an upload session bound to repo and returns its ID.
func (s *Service) StartUpload(ctx context.Context, repo content.Repo) (string, error) {
	id, err := s.blobs.StartUpload(ctx)
	if err != nil {
		return "", fmt.Errorf("start upload in %s: %w", repo.Name, err)
	}
	return id + "-" + s.binding(repo.Name, id), nil
}

// UploadSize returns the bytes the session received so far.
func (s *Service) UploadSize(ctx context.Context, repo content.Repo, id string) (int64, error) {
	sid, err := s.sessionID(repo.Name, id)
	if err != nil {
		return 0, err
	}
	n, err := s.blobs.UploadSize(ctx, sid)
	if err != nil {
		return 0, uploadError(repo.Name, id, err)
	}
	return n, nil
}

// AppendUpload appends r to the session; offset >= 0 must equal the bytes received so far, else
// RANGE_INVALID (416). A failed append (including a failing r) leaves the session as it was. Errors of
// r are returned wrapped.
func (s *Service) AppendUpload(ctx context.Context, repo content.Repo, id string, offset int64, r io.Reader) (int64, error) {
	sid, err := s.sessionID(repo.Name, id)
	if err != nil {
		return 0, err
	}
	n, err := s.blobs.AppendUpload(ctx, sid, offset, r)
	if err != nil {
		return 0, uploadError(repo.Name, id, err)
	}
	return n, nil
}

// CommitUpload verifies the session's content against d, stores it and links it into repo. On a digest
// mismatch (DIGEST_INVALID) the session is gone.
func (s *Service) CommitUpload(ctx context.Context, repo content.Repo, id string, d digest.Digest) (int64, error) {
	if repo.Project == nil {
		return 0, fmt.Errorf("CommitUpload: repository %s has no project", repo.Name)
	}
	sid, err := s.sessionID(repo.Name, id)
	if err != nil {
		return 0, err
	}
	if _, err := parseDigest(d.String()); err != nil {
		return 0, err
	}
	unpin, err := s.pin(ctx, d)
	if err != nil {
		return 0, err
	}
	defer unpin()
	n, err := s.blobs.CommitUpload(ctx, sid, d)
	if err != nil {
		return 0, uploadError(repo.Name, id, err)
	}
	if err := s.links.LinkBlob(ctx, repo.Project.ID, repo.Name, d.String(), n); err != nil {
		return 0, recordError(repo.Name, err, "linking blob "+d.String())
	}
	return n, nil
}

// CancelUpload drops the session.
func (s *Service) CancelUpload(ctx context.Context, repo content.Repo, id string) error {
	sid, err := s.sessionID(repo.Name, id)
	if err != nil {
		return err
	}
	if err := s.blobs.CancelUpload(ctx, sid); err != nil {
		return uploadError(repo.Name, id, err)
	}
	return nil
}
