package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// ListTags returns every tag of repo, following Link pagination (same origin only, at most
// Options.MaxPages pages), each page decoded as it arrives into one list of distinct tags (an upstream
// may repeat a tag on several pages), bounded by Options.MaxTagListBytes across all pages and
// Options.MaxTags tags; exceeding either is an Invalid error. Entries that are not valid tags are left
// out. A repository with no tags yields an empty, non-nil slice.
func (c *Client) ListTags(ctx context.Context, repo string) ([]string, error) {
	urepo := c.UpstreamRepo(repo)
	if err := checkRepo(urepo); err != nil {
		return nil, err
	}
	u := c.url("/v2/" + urepo + "/tags/list")
	if c.opts.TagPageSize > 0 {
		u.RawQuery = url.Values{"n": {strconv.Itoa(c.opts.TagPageSize)}}.Encode()
	}
	tags := []string{}
	seen := map[string]bool{}
	add := func(tag string) error {
		if seen[tag] || !tagPattern.MatchString(tag) {
			return nil
		}
		if len(tags) >= c.opts.MaxTags {
			return fmt.Errorf("%w: the tag list has more than %d tags", errTooLarge, c.opts.MaxTags)
		}
		seen[tag] = true
		tags = append(tags, tag)
		return nil
	}
	b := newBudget(c.opts.MaxTagListBytes, "tag list")
	err := c.paginate(ctx, u, http.Header{"Accept": {"application/json"}}, pullScope(urepo), func(page int, resp *http.Response) error {
		if resp.StatusCode != http.StatusOK {
			return statusError(resp)
		}
		where := fmt.Sprintf("GET %s (page %d)", redactedPath(resp), page+1)
		br, err := b.reader(resp)
		if err == nil {
			err = decodeTagList(br, add)
		}
		var fe *formatError
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errTooLarge):
			return &Error{Kind: Invalid, Status: resp.StatusCode, Err: fmt.Errorf("%s: %w", where, err)}
		case errors.As(err, &fe):
			return &Error{Kind: Invalid, Status: resp.StatusCode, Err: fmt.Errorf("%s: tag list is not JSON: %w", where, err)}
		}
		return &Error{Kind: Unavailable, Status: resp.StatusCode, Err: fmt.Errorf("%s: reading body: %w", where, err)}
	})
	if err != nil {
		return nil, err
	}
	return tags, nil
}

// paginate GETs u and the rel="next" pages after it, calling onPage with each response (page counts
// from 0); the body is closed after onPage returns, and the Link header is followed only when onPage
// accepted the page (returned nil). It stops after the last page, on the first error, or with an Invalid error when more than
// Options.MaxPages pages are offered or a page links back to one already read.
func (c *Client) paginate(ctx context.Context, u *url.URL, hdr http.Header, scope string, onPage func(page int, resp *http.Response) error) error {
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page >= c.opts.MaxPages {
			return newError(Invalid, "%s: more than %d pages", u.Host+u.EscapedPath(), c.opts.MaxPages)
		}
		seen[u.String()] = true
		next, err := c.fetchPage(ctx, u, hdr, scope, page, onPage)
		if err != nil {
			return err
		}
		if next == nil {
			return nil
		}
		if seen[next.String()] {
			return newError(Invalid, "%s: pagination links back to a page already read", u.Host+u.EscapedPath())
		}
		u = next
	}
}

func (c *Client) fetchPage(ctx context.Context, u *url.URL, hdr http.Header, scope string, page int, onPage func(int, *http.Response) error) (*url.URL, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, u, hdr, scope)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp)
	if err := onPage(page, resp); err != nil {
		return nil, err
	}
	return nextLink(resp, u, c.base)
}
