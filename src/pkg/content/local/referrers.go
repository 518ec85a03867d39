package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/reference"
)

// ListReferrers returns one page of the manifests in repo whose subject is subject, newest first, as
// descriptors per the spec (mediaType, digest, size, artifactType, annotations). With q.ArtifactType set
// only that type is listed and FiltersApplied is ["artifactType"]. A page holds q.N entries (capped by the
// service's maximum, which is also the size when q.N <= 0); Next is an opaque cursor naming the last entry
// served, "" on the last page. The cursor is a position in the (push time, digest) order, so entries pushed
// or deleted between pages neither repeat nor shift the rest. A repository without referrers (or without
// any content) gives an empty page, never an error.
func (s *Service) ListReferrers(ctx context.Context, repo content.Repo, subject digest.Digest, q content.ReferrersQuery) (*content.ReferrersPage, error) {
	if _, err := parseDigest(subject.String()); err != nil {
		return nil, err
	}
	var after *cursor
	if q.Last != "" {
		c, err := parseCursor(q.Last)
		if err != nil {
			return nil, err
		}
		after = &c
	}
	n := s.pages.Size(q.N)
	list, err := s.artifacts.ListReferrers(ctx, repo.Name, subject.String(), q.ArtifactType)
	if err != nil && !errors.Is(err, meta.ErrNotFound) {
		return nil, fmt.Errorf("listing referrers of %s in %s: %w", subject, repo.Name, err)
	}
	// Sort here too: the cursor comparison below must use exactly this order.
	slices.SortStableFunc(list, func(a, b *meta.Artifact) int { return cursorOf(a).compare(cursorOf(b)) })
	start := 0
	if after != nil {
		start = len(list)
		for i, a := range list {
			if after.compare(cursorOf(a)) < 0 {
				start = i
				break
			}
		}
	}
	page := &content.ReferrersPage{Manifests: []ocispec.Descriptor{}}
	if q.ArtifactType != "" {
		page.FiltersApplied = []string{"artifactType"}
	}
	var last *meta.Artifact
	for _, a := range list[start:] {
		if q.ArtifactType != "" && a.ArtifactType != q.ArtifactType {
			continue // the store filters already; this keeps the promise if it did not
		}
		if len(page.Manifests) == n {
			page.Next = cursorOf(last).String()
			break
		}
		d, err := reference.ParseDigest(a.Digest) // no regular expression: this runs per entry of every listing
		if err != nil {
			return nil, fmt.Errorf("referrer %q of %s in %s: %w", a.Digest, subject, repo.Name, err)
		}
		page.Manifests = append(page.Manifests, ocispec.Descriptor{
			MediaType:    a.MediaType,
			Digest:       d,
			Size:         a.Size,
			ArtifactType: a.ArtifactType,
			Annotations:  maps.Clone(a.Annotations),
		})
		last = a
	}
	return page, nil
}

// cursor is a position in the referrers order: newest push first, then digest ascending.
type cursor struct {
	sec    int64 // push time, Unix seconds
	nsec   int64 // push time, nanoseconds within the second
	digest string
}

func cursorOf(a *meta.Artifact) cursor {
	return cursor{sec: a.PushTime.Unix(), nsec: int64(a.PushTime.Nanosecond()), digest: a.Digest}
}

// compare orders cursors as the listing does: negative when c comes first.
func (c cursor) compare(o cursor) int {
	if v := cmp.Compare(o.sec, c.sec); v != 0 {
		return v
	}
	if v := cmp.Compare(o.nsec, c.nsec); v != 0 {
		return v
	}
	return cmp.Compare(c.digest, o.digest)
}

// String encodes the cursor as "<seconds>.<nanoseconds>.<digest>".
func (c cursor) String() string {
	return strconv.FormatInt(c.sec, 10) + "." + strconv.FormatInt(c.nsec, 10) + "." + c.digest
}

func parseCursor(v string) (cursor, error) {
	bad := errcode.ErrPaginationInvalid.WithMessage("invalid pagination cursor %q", v)
	parts := strings.SplitN(v, ".", 3)
	if len(parts) != 3 {
		return cursor{}, bad
	}
	sec, err1 := strconv.ParseInt(parts[0], 10, 64)
	nsec, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || nsec < 0 || nsec >= 1e9 {
		return cursor{}, bad
	}
	if _, err := digest.Parse(parts[2]); err != nil {
		return cursor{}, bad
	}
	return cursor{sec: sec, nsec: nsec, digest: parts[2]}, nil
}
