package local

import (
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
	unpin, err := s.pin(ctx, m.Digest)
	if err != nil {
		return err
	}
	defer unpin()
	return s.store(ctx, repo, m.Digest, m.Body, p, meta.OriginPulled, tag)
}
