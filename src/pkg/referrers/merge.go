package referrers

import (
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/errcode"
)

// merge returns the list served for one subject: first the local entries the upstream does not list
// (what this organisation pushed, newest first as the store orders them), then the upstream entries in
// the cached order, de-duplicated by digest.
//
// An upstream entry that is also held locally keeps its upstream position but is served with the local
// descriptor, which Berth computed from the manifest it holds (so artifactType and annotations follow the
// spec whatever the upstream reported). Keeping the position when an entry becomes local (a prefetch or a
// client pull records it) keeps pagination cursors valid while a client walks the pages.
//
// The result may share upstream's backing array (nothing local, no duplicates: the warm path of a proxied
// subject): callers treat it as read-only, as they treat cache entries.
func merge(local, upstream []ocispec.Descriptor) []ocispec.Descriptor {
	if len(local) == 0 && len(upstream) > 0 && len(upstream) <= smallList && !hasDuplicates(upstream) {
		return upstream
	}
	held := make(map[digest.Digest]int, len(local)) // digest -> index in local
	for i, d := range local {
		if _, dup := held[d.Digest]; !dup {
			held[d.Digest] = i
		}
	}
	listed := make(map[digest.Digest]bool, len(upstream))
	for _, d := range upstream {
		listed[d.Digest] = true
	}
	out := make([]ocispec.Descriptor, 0, len(local)+len(upstream))
	seen := make(map[digest.Digest]bool, len(local)+len(upstream))
	for _, d := range local {
		if listed[d.Digest] || seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		out = append(out, d)
	}
	for _, d := range upstream {
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		if i, ok := held[d.Digest]; ok {
			d = local[i]
		}
		out = append(out, d)
	}
	return out
}

// smallList is the longest list checked for duplicates pairwise (cheaper than a map up to here).
const smallList = 32

// hasDuplicates reports whether two entries of list share a digest (pairwise: for short lists).
func hasDuplicates(list []ocispec.Descriptor) bool {
	for i := range list {
		for j := i + 1; j < len(list); j++ {
			if list[i].Digest == list[j].Digest {
				return true
			}
		}
	}
	return false
}

// stableOrder returns fresh (a new upstream answer) ordered so that positions in prev (the answer it
// replaces) do not move: entries prev lacked come first, in the upstream's order (registries list the
// newest first), then the entries prev had, in prev's order. An upstream that lists in another order on
// every request (go-containerregistry iterates a map) therefore does not break the cursors of clients
// walking the pages across a refresh.
func stableOrder(prev, fresh []ocispec.Descriptor) []ocispec.Descriptor {
	if len(prev) == 0 {
		return fresh
	}
	pos := make(map[digest.Digest]int, len(fresh))
	for i, d := range fresh {
		pos[d.Digest] = i
	}
	had := make(map[digest.Digest]bool, len(prev))
	for _, d := range prev {
		had[d.Digest] = true
	}
	out := make([]ocispec.Descriptor, 0, len(fresh))
	for _, d := range fresh {
		if !had[d.Digest] {
			out = append(out, d)
		}
	}
	for _, d := range prev {
		if i, ok := pos[d.Digest]; ok {
			out = append(out, fresh[i])
			delete(pos, d.Digest) // a digest prev listed twice is served once
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

// page cuts one page of at most n entries (n <= 0: all) after the cursor. The cursor is
// "<index>.<digest>" of the last entry served. When the list changed since, the digest is looked up
// where it moved to; when it is gone, the page resumes at its index, so that the entry that took its
// place is not skipped (at worst one entry is served twice, never one lost). next is "" on the last
// page. A malformed cursor is PAGINATION_NUMBER_INVALID.
func page(list []ocispec.Descriptor, cursor string, n int) (out []ocispec.Descriptor, next string, err error) {
	start := 0
	if cursor != "" {
		if start, err = resume(list, cursor); err != nil {
			return nil, "", err
		}
	}
	start = min(start, len(list))
	end := len(list)
	if n > 0 && start+n < end {
		end = start + n
	}
	out = list[start:end]
	if end < len(list) && end > start {
		next = strconv.Itoa(end-1) + "." + list[end-1].Digest.String()
	}
	return out, next, nil
}

// parseCursor splits a cursor made by page into the index and digest of the last entry served.
func parseCursor(cursor string) (int, string, error) {
	idx, dg, ok := strings.Cut(cursor, ".")
	i, err := strconv.Atoi(idx)
	if !ok || err != nil || i < 0 || digest.Digest(dg).Validate() != nil {
		return 0, "", errcode.ErrPaginationInvalid.WithMessage("invalid referrers pagination cursor %q", cursor)
	}
	return i, dg, nil
}

// resume returns the index after the entry cursor names.
func resume(list []ocispec.Descriptor, cursor string) (int, error) {
	i, dg, err := parseCursor(cursor)
	if err != nil {
		return 0, err
	}
	if i < len(list) && list[i].Digest.String() == dg {
		return i + 1, nil
	}
	for j, d := range list {
		if d.Digest.String() == dg {
			return j + 1, nil
		}
	}
	return i, nil
}
