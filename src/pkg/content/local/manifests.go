package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/reference"
)

// GetManifest returns the exact bytes of the manifest that ref (a tag or a digest) names in repo, with the
// media type recorded at push. It counts a pull (written in the background, see pullBatcher).
func (s *Service) GetManifest(ctx context.Context, repo content.Repo, ref string) (*content.Manifest, error) {
	a, err := s.resolve(ctx, repo.Name, ref)
	if err != nil {
		return nil, err
	}
	d, err := reference.ParseDigest(a.Digest) // no regular expression: every manifest read runs this
	if err != nil {
		return nil, fmt.Errorf("artifact %s in %s has an invalid digest: %w", a.Digest, repo.Name, err)
	}
	body, err := s.readManifest(ctx, d, a.Size)
	if err != nil {
		return nil, err
	}
	s.pulls.record(repo.Name, d, s.now(), content.PullKindOf(ctx))
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

// readManifest reads a stored manifest whose recorded size is size, from memory when it was read before.
func (s *Service) readManifest(ctx context.Context, d digest.Digest, size int64) ([]byte, error) {
	if size < 0 || size > content.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s has an invalid recorded size %d", d, size)
	}
	if body, ok := s.bodies.get(d); ok && int64(len(body)) == size {
		return body, nil
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
	s.bodies.add(d, body)
	return body, nil
}

// PutManifest validates body and stores it byte for byte under ref. mediaType is the request's
// Content-Type without parameters. When ref is a digest, body must hash to it with its algorithm and is
// stored under it (so sha512 manifests keep their sha512 digest); a tag push uses sha256. Every tag in
// tags (the `tag` query parameters of a push, at most MaxPushTags) is pointed at the manifest in the
// same transaction as the record; the result lists every tag applied, ref's included.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-manifests-with-tags
//
// The blobs and child manifests body references must be in the repository, except the layers and
// child manifests of a project that allows sparse manifests (meta.Project.AllowSparseManifests).
func (s *Service) PutManifest(ctx context.Context, repo content.Repo, ref, mediaType string, body []byte, tags ...string) (*content.PutResult, error) {
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
	all, err := pushTags(tag, tags)
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
	// Pinned before the check: from here to the record, the collector leaves them all alone.
	unpin, err := s.pin(ctx, append(append([]digest.Digest{d}, p.blobs...), p.children...)...)
	if err != nil {
		return nil, err
	}
	defer unpin()
	if err := s.checkReferences(ctx, repo.Name, p, repo.Project.AllowSparseManifests()); err != nil {
		return nil, err
	}
	if err := s.store(ctx, repo, d, body, p, meta.OriginPushed, all...); err != nil {
		return nil, err
	}
	return &content.PutResult{Digest: d, Subject: p.subject, Tags: all}, nil
}

// MaxPushTags bounds the tags one manifest push may apply.
const MaxPushTags = 100

// pushTags validates the tag parameters of a push and returns them with the reference's tag (when ref
// is one), without duplicates, in the order given.
func pushTags(refTag string, params []string) ([]string, error) {
	if len(params) > MaxPushTags {
		return nil, errcode.ErrManifestInvalid.WithMessage("at most %d tag parameters per push, got %d", MaxPushTags, len(params))
	}
	var all []string
	if refTag != "" {
		all = append(all, refTag)
	}
	for _, t := range params {
		if err := reference.ValidateTag(t); err != nil {
			return nil, errcode.ErrManifestInvalid.WithMessage("tag parameter: %s", err.Error()).
				WithDetail(map[string]string{"tag": t})
		}
		if !slices.Contains(all, t) {
			all = append(all, t)
		}
	}
	return all, nil
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

// store writes a validated manifest's bytes, then its record (and tags): a record never points at
// missing bytes.
func (s *Service) store(ctx context.Context, repo content.Repo, d digest.Digest, body []byte, p *parsedManifest, origin string, tags ...string) error {
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
	if err := s.artifacts.PutArtifact(ctx, repo.Project.ID, repo.Name, a, tags...); err != nil {
		return recordError(repo.Name, err, "recording manifest "+d.String())
	}
	return nil
}
