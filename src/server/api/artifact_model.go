package api

import (
	"context"
	"encoding/json"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// Media types that decide an artifact's Harbor type.
const (
	mtOCIIndex      = "application/vnd.oci.image.index.v1+json"
	mtDockerList    = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtOCIConfig     = "application/vnd.oci.image.config.v1+json"
	mtDockerConfig  = "application/vnd.docker.container.image.v1+json"
	mtHelmConfig    = "application/vnd.cncf.helm.config.v1+json"
	mtCosignSig     = "application/vnd.dev.cosign.artifact.sig.v1+json"
	mtSigstoreV03   = "application/vnd.dev.sigstore.bundle.v0.3+json"
	mtNotarySig     = "application/vnd.cncf.notary.signature"
	mtHarborSBOM    = "application/vnd.goharbor.harbor.sbom.v1"
	mtCosignSigMain = "application/vnd.dev.sigstore.bundle+json"
)

// IsIndex reports whether a manifest media type is an image index or a Docker manifest list.
func IsIndex(mediaType string) bool { return mediaType == mtOCIIndex || mediaType == mtDockerList }

// harborType is Harbor's artifact type: IMAGE for images and indexes, CHART for Helm charts, else
// UNKNOWN (Harbor's name for artifacts no processor claims).
func harborType(a *meta.Artifact) string {
	switch {
	case IsIndex(a.MediaType), a.ArtifactType == mtOCIConfig, a.ArtifactType == mtDockerConfig:
		return "IMAGE"
	case a.ArtifactType == mtHelmConfig:
		return "CHART"
	}
	return "UNKNOWN"
}

// AccessoryType is Harbor's accessory type for a referrer's artifactType.
func AccessoryType(artifactType string) string {
	switch artifactType {
	case mtCosignSig, mtSigstoreV03, mtCosignSigMain:
		return "signature.cosign"
	case mtNotarySig:
		return "signature.notation"
	case mtHarborSBOM:
		return "sbom.harbor"
	}
	return "subject.accessory"
}

// artifactsToJSON converts artifacts of project p, with their tags (one query for all), index children
// (from the stored manifest) and accessories (the local referrer index) as opts asks.
func (a *API) artifactsToJSON(ctx context.Context, p *meta.Project, arts []*meta.Artifact, opts artifactOptions) ([]artifactJSON, error) {
	tagsOf := map[int64][]tagJSON{}
	if opts.tags && len(arts) > 0 {
		ids := make([]int64, len(arts))
		byID := make(map[int64]*meta.Artifact, len(arts))
		for i, art := range arts {
			ids[i], byID[art.ID] = art.ID, art
		}
		tags, err := a.artifacts.ListArtifactTags(ctx, ids)
		if err != nil {
			return nil, storeError(err, "tag")
		}
		for _, t := range tags {
			tagsOf[t.ArtifactID] = append(tagsOf[t.ArtifactID], toTagJSON(t, byID[t.ArtifactID]))
		}
	}
	out := make([]artifactJSON, len(arts))
	for i, art := range arts {
		j := artifactJSON{
			ID: art.ID, Type: harborType(art), MediaType: art.ArtifactType, ManifestMediaType: art.MediaType,
			ArtifactType: art.ArtifactType, ProjectID: p.ID, RepositoryID: art.RepositoryID,
			RepositoryName: art.Repository, Digest: art.Digest, Size: art.Size, PushTime: harborTime(art.PushTime),
			PullTime: harborTime(art.PullTime), Annotations: art.Annotations, Labels: []struct{}{},
		}
		if IsIndex(art.MediaType) {
			j.MediaType = art.MediaType
		}
		if opts.tags {
			j.Tags = nonNilSlice(tagsOf[art.ID])
		}
		var err error
		if j.References, err = a.references(ctx, art); err != nil {
			return nil, err
		}
		if opts.accessories {
			if j.Accessories, err = a.accessories(ctx, art); err != nil {
				return nil, err
			}
		}
		out[i] = j
	}
	return out, nil
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// references lists an index's children with their platforms; null for other artifacts (as Harbor).
func (a *API) references(ctx context.Context, art *meta.Artifact) ([]referenceJSON, error) {
	if !IsIndex(art.MediaType) {
		return nil, nil
	}
	body, err := a.artifacts.ReadManifest(ctx, art.Digest)
	if err != nil {
		return nil, errcode.ErrInternal.Wrap(err, "reading index %s", art.Digest)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		return nil, errcode.ErrInternal.Wrap(err, "decoding index %s", art.Digest)
	}
	out := make([]referenceJSON, 0, len(idx.Manifests))
	for _, m := range idx.Manifests {
		ref := referenceJSON{ParentID: art.ID, ChildDigest: m.Digest.String(), Annotations: m.Annotations,
			URLs: nonNilSlice(m.URLs)}
		if child, err := a.artifacts.GetArtifact(ctx, art.Repository, m.Digest.String()); err == nil {
			ref.ChildID = child.ID
		}
		if pl := m.Platform; pl != nil {
			ref.Platform = &platformJSON{Architecture: pl.Architecture, OS: pl.OS, OSVersion: pl.OSVersion,
				OSFeatures: pl.OSFeatures, Variant: pl.Variant}
		}
		out = append(out, ref)
	}
	return out, nil
}

// accessories lists the referrers of art held in its repository.
func (a *API) accessories(ctx context.Context, art *meta.Artifact) ([]accessoryJSON, error) {
	refs, err := a.artifacts.ListReferrers(ctx, art.Repository, art.Digest, "")
	if err != nil {
		return nil, storeError(err, "referrers")
	}
	out := make([]accessoryJSON, 0, len(refs))
	for _, r := range refs {
		out = append(out, accessoryJSON{
			ID: r.ID, ArtifactID: r.ID, SubjectArtifactID: art.ID, SubjectArtifactDigest: art.Digest,
			SubjectArtifactRepo: art.Repository, Size: r.Size, Digest: r.Digest, Type: AccessoryType(r.ArtifactType),
			CreationTime: harborTime(r.PushTime),
		})
	}
	return out, nil
}
