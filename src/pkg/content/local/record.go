package local

import (
	"bytes"
	"context"
	"fmt"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// RecordManifest stores a manifest fetched from an upstream registry byte for byte under m.Digest and,
// when tag != "", points the tag at it. Unlike PutManifest it does not require the blobs and manifests it
// references to be held: a proxy fetches those on demand. The body must still hash to m.Digest and parse
// as a manifest of its media type; its subject is indexed, so referrers pulled through are listed.
func (s *Service) RecordManifest(ctx context.Context, repo content.Repo, tag string, m *content.Manifest) error {
	if repo.Project == nil {
		return fmt.Errorf("RecordManifest: repository %s has no project", repo.Name)
	}
	if len(m.Body) > content.MaxManifestSize {
		return errcode.ErrManifestTooLarge.WithMessage("manifest exceeds %d bytes", content.MaxManifestSize)
	}
	if err := m.Digest.Validate(); err != nil {
		return errcode.ErrDigestInvalid.WithMessage("invalid manifest digest %q", m.Digest)
	}
	if got := m.Digest.Algorithm().FromBytes(m.Body); got != m.Digest {
		return errcode.ErrUpstreamInvalid.WithMessage("manifest digest %s does not match its content (%s)", m.Digest, got)
	}
	p, err := parseManifest(m.MediaType, m.Body)
	if err != nil {
		return err
	}
	if _, err := s.blobs.Put(ctx, m.Digest, bytes.NewReader(m.Body)); err != nil {
		return fmt.Errorf("storing manifest %s: %w", m.Digest, err)
	}
	a := &meta.Artifact{
		Repository:   repo.Name,
		Digest:       m.Digest.String(),
		MediaType:    p.mediaType,
		ArtifactType: p.artifactType,
		Size:         int64(len(m.Body)),
		Annotations:  p.annotations,
		Subject:      p.subject.String(),
		PushTime:     s.now(),
	}
	if err := s.artifacts.PutArtifact(ctx, repo.Project.ID, repo.Name, a, tag); err != nil {
		return recordError(repo.Name, err, "recording manifest "+m.Digest.String())
	}
	return nil
}
