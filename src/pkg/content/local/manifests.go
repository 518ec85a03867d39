package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// GetManifest returns the exact bytes of the manifest that ref (a tag or a digest) names in repo, with the
// media type recorded at push. It schedules a pull-time update in the background.
func (s *Service) GetManifest(ctx context.Context, repo content.Repo, ref string) (*content.Manifest, error) {
	a, err := s.resolve(ctx, repo.Name, ref)
	if err != nil {
		return nil, err
	}
	d, err := digest.Parse(a.Digest)
	if err != nil {
		return nil, fmt.Errorf("artifact %s in %s has an invalid digest: %w", a.Digest, repo.Name, err)
	}
	body, err := s.readManifest(ctx, d, a.Size)
	if err != nil {
		return nil, err
	}
	s.pulls.record(ctx, repo.Name, d, s.now())
	return &content.Manifest{Digest: d, MediaType: a.MediaType, Body: body}, nil
}

// resolve finds the artifact a tag or digest names, or MANIFEST_UNKNOWN.
func (s *Service) resolve(ctx context.Context, repo, ref string) (*meta.Artifact, error) {
	tag, d, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	var a *meta.Artifact
	if tag != "" {
		a, err = s.artifacts.ResolveTag(ctx, repo, tag)
	} else {
		a, err = s.artifacts.GetArtifact(ctx, repo, d.String())
	}
	if errors.Is(err, meta.ErrNotFound) {
		return nil, errcode.ErrManifestUnknown.WithMessage("manifest %s unknown to repository %s", ref, repo).
			WithDetail(map[string]string{"reference": ref})
	}
	if err != nil {
		return nil, fmt.Errorf("resolving %s in %s: %w", ref, repo, err)
	}
	return a, nil
}

// readManifest reads a stored manifest whose recorded size is size.
func (s *Service) readManifest(ctx context.Context, d digest.Digest, size int64) ([]byte, error) {
	if size < 0 || size > content.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s has an invalid recorded size %d", d, size)
	}
	b, err := s.blobs.Open(ctx, d)
	if err != nil {
		// A recorded manifest without bytes is an inconsistency of the store, not a client error.
		return nil, fmt.Errorf("opening manifest %s: %w", d, err)
	}
	defer func() { _ = b.Close() }()
	body := make([]byte, size)
	if _, err := io.ReadFull(b, body); err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", d, err)
	}
	return body, nil
}

// PutManifest validates body and stores it byte for byte under ref. mediaType is the request's
// Content-Type without parameters. When ref is a digest, body must hash to it with its algorithm and is
// stored under it (so sha512 manifests keep their sha512 digest); a tag push uses sha256.
func (s *Service) PutManifest(ctx context.Context, repo content.Repo, ref, mediaType string, body []byte) (*content.PutResult, error) {
	if len(body) > content.MaxManifestSize {
		return nil, errcode.ErrManifestTooLarge.WithMessage("manifest exceeds %d bytes", content.MaxManifestSize)
	}
	if repo.Project == nil {
		return nil, fmt.Errorf("PutManifest: repository %s has no project", repo.Name)
	}
	tag, d, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	if tag != "" {
		d = digest.Canonical.FromBytes(body)
	} else if got := d.Algorithm().FromBytes(body); got != d {
		return nil, errcode.ErrDigestInvalid.WithMessage("manifest digest %s does not match reference %s", got, d).
			WithDetail(map[string]string{"digest": d.String()})
	}
	p, err := parseManifest(mediaType, body)
	if err != nil {
		return nil, err
	}
	if err := s.checkReferences(ctx, repo.Name, p); err != nil {
		return nil, err
	}
	if err := s.store(ctx, repo, d, body, p, tag, meta.OriginPushed); err != nil {
		return nil, err
	}
	return &content.PutResult{Digest: d, Subject: p.subject}, nil
}

// DeleteManifest deletes the manifest a digest names (with its tags and its referrer index entry), or only
// the tag when ref is a tag. The bytes stay in storage for other repositories.
func (s *Service) DeleteManifest(ctx context.Context, repo content.Repo, ref string) error {
	tag, d, err := parseRef(ref)
	if err != nil {
		return err
	}
	if _, err := s.resolve(ctx, repo.Name, ref); err != nil {
		return err
	}
	if tag != "" {
		err = s.artifacts.DeleteTag(ctx, repo.Name, tag)
	} else {
		err = s.artifacts.DeleteArtifact(ctx, repo.Name, d.String())
	}
	if errors.Is(err, meta.ErrNotFound) {
		return errcode.ErrManifestUnknown.WithMessage("manifest %s unknown to repository %s", ref, repo.Name)
	}
	if err != nil {
		return fmt.Errorf("deleting %s in %s: %w", ref, repo.Name, err)
	}
	return nil
}

// store writes a validated manifest's bytes, then its record (and tag): a record never points at
// missing bytes.
func (s *Service) store(ctx context.Context, repo content.Repo, d digest.Digest, body []byte, p *parsedManifest, tag, origin string) error {
	if _, err := s.blobs.Put(ctx, d, bytes.NewReader(body)); err != nil {
		return fmt.Errorf("storing manifest %s: %w", d, err)
	}
	a := &meta.Artifact{
		Repository:   repo.Name,
		Digest:       d.String(),
		MediaType:    p.mediaType,
		ArtifactType: p.artifactType,
		Size:         int64(len(body)),
		Annotations:  p.annotations,
		Subject:      p.subject.String(),
		PushTime:     s.now(),
		Origin:       origin,
	}
	if err := s.artifacts.PutArtifact(ctx, repo.Project.ID, repo.Name, a, tag); err != nil {
		return recordError(repo.Name, err, "recording manifest "+d.String())
	}
	return nil
}
