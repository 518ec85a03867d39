// Package quota keeps projects within their storage limits and the data directory's filesystem under
// its high watermark. Pushes over a project's limit are refused with Harbor's error (Denied); a
// proxy-cache project instead evicts its least recently pulled cached content to make room (Evictor.MakeRoom),
// and a background loop evicts cached content across proxy-cache projects when the filesystem is fuller
// than the high watermark, down to the low one (Evictor.RunWatermarks). Pushed content is never evicted.
//
// The unit of eviction is a group (groups.go): the artifacts of one repository that live and die
// together, an index with its children and a subject with its referrers. Removing a group is the
// Remover's job; MetaRemover is the built-in one. Blob bytes are deleted only once nothing references
// them any more (sweep.go).
package quota

import (
	"fmt"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// Denied is the client error for a push refused by the project's quota: 403 DENIED with Harbor's message,
// which names the bytes added, the usage and the limit. It wraps e (errors.As finds it).
func Denied(e *meta.QuotaError) error {
	return errcode.ErrDenied.Wrap(e,
		"Quota exceeded when processing the request of adding %s of storage resource, which when updated to current usage of %s will exceed the configured upper limit of %s.",
		FormatBytes(e.Adding), FormatBytes(e.Used), FormatBytes(e.Hard))
}

// FormatBytes formats n as Harbor does in quota messages: "512 B", "1.3 MiB", "50.0 MiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), 0
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i-1])
}
