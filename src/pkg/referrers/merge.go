package referrers

import (
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// manifestMediaTypes are the media types a referrer descriptor may carry: a referrer is a manifest or
// an index (the spec), and registries still serve Docker types.
var manifestMediaTypes = map[string]bool{
	ocispec.MediaTypeImageManifest:                              true,
	ocispec.MediaTypeImageIndex:                                 true,
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
}

// validDescriptor reports whether an upstream descriptor can be served: a manifest media type, a
// well-formed sha256/sha512 digest and a size within the manifest limit.
func validDescriptor(d ocispec.Descriptor, maxSize int64) bool {
	if !manifestMediaTypes[d.MediaType] {
		return false
	}
	if d.Size <= 0 || d.Size > maxSize {
		return false
	}
	if err := d.Digest.Validate(); err != nil {
		return false
	}
	alg := d.Digest.Algorithm()
	return alg == digest.SHA256 || alg == digest.SHA512
}

// clean keeps the fields the spec defines for a referrers entry and drops everything else an upstream
// may have added (urls, platform, data), so clients see the same shape from every upstream.
func clean(d ocispec.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType:    d.MediaType,
		Digest:       d.Digest,
		Size:         d.Size,
		ArtifactType: d.ArtifactType,
		Annotations:  d.Annotations,
	}
}

// merge returns local followed by the upstream entries it lacks, de-duplicated by digest. Local entries
// come first: they are computed from manifests Berth holds, and they are what this organisation pushed.
func merge(local, upstream []ocispec.Descriptor) []ocispec.Descriptor {
	out := make([]ocispec.Descriptor, 0, len(local)+len(upstream))
	seen := make(map[digest.Digest]bool, len(local)+len(upstream))
	for _, list := range [][]ocispec.Descriptor{local, upstream} {
		for _, d := range list {
			if seen[d.Digest] {
				continue
			}
			seen[d.Digest] = true
			out = append(out, d)
		}
	}
	return out
}

// filter keeps the entries of artifactType ("" keeps all).
func filter(list []ocispec.Descriptor, artifactType string) []ocispec.Descriptor {
	if artifactType == "" {
		return list
	}
	out := make([]ocispec.Descriptor, 0, len(list))
	for _, d := range list {
		if d.ArtifactType == artifactType {
			out = append(out, d)
		}
	}
	return out
}

// page cuts one page of n entries after the cursor. The cursor is "<index>.<digest>" of the last entry
// served; when the list changed since and the digest no longer stands at that index, it is looked up,
// and when it is gone the page resumes at the index. next is "" on the last page.
func page(list []ocispec.Descriptor, cursor string, n int) (out []ocispec.Descriptor, next string) {
	start := 0
	if cursor != "" {
		start = resume(list, cursor)
	}
	if start > len(list) {
		start = len(list)
	}
	end := len(list)
	if n > 0 && start+n < end {
		end = start + n
	}
	out = list[start:end]
	if end < len(list) && end > start {
		next = strconv.Itoa(end-1) + "." + list[end-1].Digest.String()
	}
	return out, next
}

func resume(list []ocispec.Descriptor, cursor string) int {
	idx, dg, ok := strings.Cut(cursor, ".")
	i, err := strconv.Atoi(idx)
	if !ok || err != nil || i < 0 {
		return 0
	}
	if i < len(list) && list[i].Digest.String() == dg {
		return i + 1
	}
	for j, d := range list {
		if d.Digest.String() == dg {
			return j + 1
		}
	}
	return i + 1
}
