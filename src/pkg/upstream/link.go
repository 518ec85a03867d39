package upstream

import (
	"net/http"
	"net/url"
	"strings"
)

// nextLink returns the rel="next" target of resp's Link headers, or nil when there is none. The target
// is resolved against requested, the URL Berth asked for (on the registry's origin), never against the
// URL of the response after redirects, and must be on origin, the registry's origin: an upstream must
// not send Berth, with its credentials, elsewhere. Another origin is an Invalid error.
func nextLink(resp *http.Response, requested, origin *url.URL) (*url.URL, error) {
	raw, ok := findNext(resp.Header.Values("Link"))
	if !ok {
		return nil, nil
	}
	next, err := resolveLink(raw, requested, origin)
	if err != nil {
		return nil, &Error{Kind: Invalid, Status: resp.StatusCode, Err: errorf("%s: %w", redactedPath(resp), err)}
	}
	return next, nil
}

// resolveLink resolves a Link target against base and checks it is on origin.
func resolveLink(raw string, base, origin *url.URL) (*url.URL, error) {
	ref, err := url.Parse(raw)
	if err != nil {
		return nil, errorf("unparsable Link %q", raw)
	}
	next := base.ResolveReference(ref)
	if !sameOrigin(origin, next) || next.User != nil {
		return nil, errorf("Link to another origin %s://%s refused", next.Scheme, next.Host)
	}
	next.Fragment = ""
	return next, nil
}

// findNext scans Link header values (RFC 8288) for the first link whose rel includes "next".
func findNext(values []string) (string, bool) {
	for _, v := range values {
		for {
			open := strings.IndexByte(v, '<')
			if open < 0 {
				break
			}
			end := strings.IndexByte(v[open:], '>')
			if end < 0 {
				break
			}
			target := v[open+1 : open+end]
			v = v[open+end+1:]
			params := v
			if i := strings.IndexByte(v, '<'); i >= 0 {
				params = v[:i]
			}
			if relIsNext(params) {
				return strings.TrimSpace(target), true
			}
		}
	}
	return "", false
}

func relIsNext(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
			continue
		}
		val = strings.Trim(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(val), ",")), `"`)
		for _, r := range strings.Fields(val) {
			if strings.EqualFold(r, "next") {
				return true
			}
		}
	}
	return false
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		effectivePort(a) == effectivePort(b)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}
