package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"
)

// GetBlob streams blob d of repo from byte offset (0 for all of it), asking with a Range header when
// offset > 0; an upstream that ignores the Range, or refuses an open-ended one (416), is read from the
// start and offset bytes are skipped. size is the blob's total size (not the remaining length), -1 when the upstream does not say. Redirects (CDN,
// object storage) are followed under the trust boundary's rules (boundary.go): credentials are never sent
// off the registry's origin, and internal addresses are refused unless the registry is on one; a
// refused redirect is an Invalid error returned before any byte is read. The bytes are not verified
// here: the caller hashes what it stores. The caller must close the reader; closing it early is fine.
// The download is bounded only by ctx.
func (c *Client) GetBlob(ctx context.Context, repo string, d digest.Digest, offset int64) (io.ReadCloser, int64, error) {
	urepo := c.UpstreamRepo(repo)
	if err := checkRepo(urepo); err != nil {
		return nil, 0, err
	}
	if err := d.Validate(); err != nil {
		return nil, 0, newError(Invalid, "blob digest %q: %v", d, err)
	}
	if offset < 0 {
		return nil, 0, newError(Invalid, "negative blob offset %d", offset)
	}
	hdr := http.Header{}
	if offset > 0 {
		hdr.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	u := c.repoURL(urepo, "blobs", d.String())
	resp, err := c.doBlob(ctx, u, hdr, pullScope(urepo))
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0 {
		// Some registries do not serve open-ended ranges: read from the start and skip instead.
		closeBody(resp)
		if resp, err = c.doBlob(ctx, u, nil, pullScope(urepo)); err != nil {
			return nil, 0, err
		}
	}
	switch resp.StatusCode {
	case http.StatusOK:
		size := resp.ContentLength
		if offset > 0 {
			if size >= 0 && offset > size {
				closeBody(resp)
				return nil, 0, &Error{Kind: Invalid, Status: resp.StatusCode, Err: fmt.Errorf("GET %s: offset %d beyond the blob's %d bytes", redactedPath(resp), offset, size)}
			}
			if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
				_ = resp.Body.Close()
				return nil, 0, &Error{Kind: Unavailable, Status: resp.StatusCode, Err: fmt.Errorf("GET %s: skipping to offset %d: %w", redactedPath(resp), offset, err)}
			}
		}
		return resp.Body, size, nil
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if offset == 0 || !ok || start != offset {
			where := redactedPath(resp)
			closeBody(resp)
			return nil, 0, &Error{Kind: Invalid, Status: http.StatusPartialContent, Err: fmt.Errorf("GET %s: partial content for range %q does not start at offset %d", where, resp.Header.Get("Content-Range"), offset)}
		}
		return resp.Body, total, nil
	default:
		return nil, 0, statusError(resp)
	}
}
