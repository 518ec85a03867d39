package upstream

import (
	"context"
	"fmt"
	"net/http"

	"github.com/opencontainers/go-digest"
)

// StatBlob asks the upstream whether it holds blob d of repo, with a HEAD
// (https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#checking-if-content-exists-in-the-registry),
// and returns its size: the Content-Length, -1 when the upstream sends none. Nothing is downloaded.
// Redirects are followed as for GetBlob (a CDN answers the HEAD), within the client's rules for where
// requests and credentials may go. A Docker-Content-Digest that names another digest is Invalid; a
// 404 is NotFound.
func (c *Client) StatBlob(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	urepo := c.UpstreamRepo(repo)
	if err := checkRepo(urepo); err != nil {
		return 0, err
	}
	if err := d.Validate(); err != nil {
		return 0, newError(Invalid, "blob digest %q: %v", d, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodHead, c.repoURL(urepo, "blobs", d.String()), nil, pullScope(urepo))
	if err != nil {
		return 0, err
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		return 0, statusError(resp)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		return 0, &Error{Kind: Invalid, Status: resp.StatusCode,
			Err: fmt.Errorf("HEAD %s: digest header %s does not match the requested %s", redactedPath(resp), got, d)}
	}
	return resp.ContentLength, nil
}
