package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// challenge is a parsed WWW-Authenticate challenge.
type challenge struct {
	scheme  string // "basic" or "bearer"; "" when none learnt yet
	realm   string
	service string
	scope   string
}

// parseChallenges parses WWW-Authenticate header values (RFC 7235: several challenges per value
// allowed) and returns the one to answer: Bearer before Basic. ok is false when neither is offered.
func parseChallenges(values []string) (challenge, bool) {
	var basic, bearer *challenge
	for _, v := range values {
		for _, ch := range parseChallengeList(v) {
			switch ch.scheme {
			case "bearer":
				if bearer == nil {
					bearer = &ch
				}
			case "basic":
				if basic == nil {
					basic = &ch
				}
			}
		}
	}
	switch {
	case bearer != nil:
		return *bearer, true
	case basic != nil:
		return *basic, true
	}
	return challenge{}, false
}

func parseChallengeList(s string) []challenge {
	var out []challenge
	var cur *challenge
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		tok, rest := readToken(s)
		if tok == "" { // garbage: skip one byte
			s = s[1:]
			continue
		}
		rest = strings.TrimLeft(rest, " \t")
		if strings.HasPrefix(rest, "=") && cur != nil {
			var val string
			val, rest = readValue(strings.TrimLeft(rest[1:], " \t"))
			switch strings.ToLower(tok) {
			case "realm":
				cur.realm = val
			case "service":
				cur.service = val
			case "scope":
				cur.scope = val
			}
			s = rest
			continue
		}
		out = append(out, challenge{scheme: strings.ToLower(tok)})
		cur = &out[len(out)-1]
		s = rest
	}
	return out
}

func readToken(s string) (tok, rest string) {
	i := strings.IndexFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == ',' || r == '=' || r == '"'
	})
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

func readValue(s string) (val, rest string) {
	if !strings.HasPrefix(s, `"`) {
		return readToken(s)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}

// tokenCache holds Bearer tokens per (realm, service, scope) until shortly before they expire, and
// fetches each key once however many requests need it.
type tokenCache struct {
	now   func() time.Time
	group singleflight.Group
	mu    sync.Mutex
	m     map[string]cachedToken
}

type cachedToken struct {
	token   string
	expires time.Time
}

// maxCachedTokens bounds the cache; expired entries are swept when it is reached.
const maxCachedTokens = 4096

func newTokenCache(now func() time.Time) *tokenCache {
	return &tokenCache{now: now, m: map[string]cachedToken{}}
}

func (tc *tokenCache) get(key string) (string, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	t, ok := tc.m[key]
	if !ok || !tc.now().Before(t.expires) {
		return "", false
	}
	return t.token, true
}

// put caches token for ttl less a safety margin (10s, or half of a short ttl).
func (tc *tokenCache) put(key, token string, ttl time.Duration) {
	margin := 10 * time.Second
	if ttl < 2*margin {
		margin = ttl / 2
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	now := tc.now()
	if len(tc.m) >= maxCachedTokens {
		for k, t := range tc.m {
			if !now.Before(t.expires) {
				delete(tc.m, k)
			}
		}
		if len(tc.m) >= maxCachedTokens {
			clear(tc.m)
		}
	}
	tc.m[key] = cachedToken{token: token, expires: now.Add(ttl - margin)}
}

// invalidate drops key if it still holds token (a newer token fetched meanwhile stays).
func (tc *tokenCache) invalidate(key, token string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if t, ok := tc.m[key]; ok && t.token == token {
		delete(tc.m, key)
	}
}

func (c *Client) currentChallenge() challenge {
	c.authMu.RLock()
	defer c.authMu.RUnlock()
	return c.challenge
}

func (c *Client) setChallenge(ch challenge) {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	if c.challenge != ch {
		c.log.Debug("upstream authentication challenge", "scheme", ch.scheme, "realm", ch.realm, "service", ch.service)
	}
	c.challenge = ch
}

func (c *Client) hasCredentials() bool { return c.ep.Username != "" || c.ep.Password != "" }

// authState is what one attempt of a request sent.
type authState struct {
	header    string // the Authorization header value, "" for anonymous
	tokenKey  string // cache key of the Bearer token sent
	token     string
	fromCache bool // the token came from the cache (it may have been revoked)
}

// authorize computes the Authorization header for scope under ch: Basic credentials, or a Bearer token
// from the cache or fetched from the realm. Anonymous when nothing is learnt or no credentials exist.
func (c *Client) authorize(ctx context.Context, ch challenge, scope string) (authState, error) {
	switch ch.scheme {
	case "basic":
		if !c.hasCredentials() {
			return authState{}, nil
		}
		req := http.Request{Header: http.Header{}}
		req.SetBasicAuth(c.ep.Username, c.ep.Password)
		return authState{header: req.Header.Get("Authorization")}, nil
	case "bearer":
		if scope == "" {
			scope = ch.scope
		}
		key := ch.realm + "\x00" + ch.service + "\x00" + scope
		if tok, ok := c.tokens.get(key); ok {
			return authState{header: "Bearer " + tok, tokenKey: key, token: tok, fromCache: true}, nil
		}
		tok, err := c.token(ctx, ch, scope, key)
		if err != nil {
			return authState{}, err
		}
		return authState{header: "Bearer " + tok, tokenKey: key, token: tok}, nil
	}
	return authState{}, nil
}

// token fetches a token for key once however many callers wait; each waiter honours its own context,
// and the fetch itself is detached from any one caller's cancellation.
func (c *Client) token(ctx context.Context, ch challenge, scope, key string) (string, error) {
	res := c.tokens.group.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.RequestTimeout)
		defer cancel()
		tok, ttl, err := c.fetchToken(fctx, ch, scope)
		if err != nil {
			return "", err
		}
		c.tokens.put(key, tok, ttl)
		return tok, nil
	})
	select {
	case r := <-res:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", &Error{Kind: Unavailable, Err: fmt.Errorf("waiting for a token: %w", ctx.Err())}
	}
}

// fetchToken asks the challenge's realm for a token with scope, sending the endpoint's credentials as
// Basic when configured (anonymous otherwise).
func (c *Client) fetchToken(ctx context.Context, ch challenge, scope string) (string, time.Duration, error) {
	realm, err := url.Parse(ch.realm)
	if err != nil || (realm.Scheme != "http" && realm.Scheme != "https") || realm.Host == "" {
		return "", 0, newError(Invalid, "bearer challenge with an unusable realm %q", ch.realm)
	}
	if realm.Scheme == "http" && c.base.Scheme == "https" && c.hasCredentials() {
		return "", 0, newError(Invalid, "refusing to send credentials to the plain-HTTP token realm %s of an HTTPS registry", realm.Host)
	}
	q := realm.Query()
	if ch.service != "" {
		q.Set("service", ch.service)
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", 0, newError(Invalid, "token request: %v", err)
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if c.hasCredentials() {
		req.SetBasicAuth(c.ep.Username, c.ep.Password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", 0, transportError(err)
	}
	defer closeBody(resp)
	if resp.StatusCode != http.StatusOK {
		e := statusError(resp)
		if e.Kind == NotFound {
			e.Kind = Unauthorized // a token service without this realm path cannot authorise us
		}
		return "", 0, e
	}
	body, err := readBody(resp)
	if err != nil {
		return "", 0, err
	}
	tok, ttl, err := parseTokenResponse(body)
	if err != nil {
		return "", 0, err
	}
	c.log.Debug("upstream token issued", "scope", scope, "expires_in", ttl)
	return tok, ttl, nil
}

// maxTokenSize bounds a token (GHCR's and Docker Hub's JWTs are a few KiB).
const maxTokenSize = 64 << 10

// validToken reports whether tok can be sent as a Bearer credential: visible ASCII only (no spaces,
// controls or line breaks that would break or smuggle headers), at most maxTokenSize bytes.
func validToken(tok string) bool {
	if len(tok) > maxTokenSize {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < 0x21 || tok[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseTokenResponse reads a token service's answer (the Docker token authentication spec): the token
// from "token", or "access_token" when that is empty, and how long to keep it: expires_in seconds,
// 60 s when absent or not positive, at most an hour. No token, or one that validToken refuses, is an
// Invalid error.
func parseTokenResponse(body []byte) (string, time.Duration, error) {
	var tr struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", 0, newError(Invalid, "token answer is not JSON: %v", err)
	}
	tok := tr.Token
	if tok == "" {
		tok = tr.AccessToken
	}
	if tok == "" {
		return "", 0, newError(Invalid, "token answer holds no token")
	}
	if !validToken(tok) {
		return "", 0, newError(Invalid, "token answer holds a token of %d bytes that is not printable ASCII of at most %d", len(tok), maxTokenSize)
	}
	var ttl time.Duration
	switch {
	case tr.ExpiresIn <= 0:
		ttl = 60 * time.Second
	case tr.ExpiresIn > 3600:
		ttl = time.Hour // never trust a token, or a clock, for longer
	default:
		ttl = time.Duration(tr.ExpiresIn) * time.Second
	}
	return tok, ttl, nil
}

// transportError classifies an error of http.Client.Do.
func transportError(err error) error {
	var e *Error
	if errors.As(err, &e) { // from checkRedirect
		return &Error{Kind: e.Kind, Err: err}
	}
	return &Error{Kind: Unavailable, Err: err}
}

// do sends a bodyless request, authenticating as the upstream demands: the first request to an upstream
// is anonymous; a 401 teaches the challenge, which later requests answer up front. On a 401 it retries
// once when that could help (credentials not yet sent, a cached token that may be revoked, no token yet).
// scope is the Bearer scope ("" for none). The caller owns the response, whatever its status.
// u must be on the registry's origin; redirects must stay there (see boundary.go).
func (c *Client) do(ctx context.Context, method string, u *url.URL, hdr http.Header, scope string) (*http.Response, error) {
	return c.exchange(ctx, false, method, u, hdr, scope)
}

// doBlob is do for blob downloads, whose redirects may leave the registry's origin (CDNs, presigned
// object-store URLs) without credentials, to addresses the boundary allows.
func (c *Client) doBlob(ctx context.Context, u *url.URL, hdr http.Header, scope string) (*http.Response, error) {
	return c.exchange(ctx, true, http.MethodGet, u, hdr, scope)
}

func (c *Client) exchange(ctx context.Context, blob bool, method string, u *url.URL, hdr http.Header, scope string) (*http.Response, error) {
	if !sameOrigin(c.base, u) {
		return nil, newError(Invalid, "request to another origin %s://%s refused", u.Scheme, u.Host)
	}
	ch := c.currentChallenge()
	st, err := c.authorize(ctx, ch, scope)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, blob, method, u, hdr, st.header)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	next, ok := parseChallenges(resp.Header.Values("WWW-Authenticate"))
	if !ok {
		return resp, nil
	}
	c.setChallenge(next)
	switch next.scheme {
	case "basic":
		if !c.hasCredentials() || (ch.scheme == "basic" && st.header != "") {
			return resp, nil
		}
	case "bearer":
		if st.token != "" {
			if !st.fromCache && ch == next {
				return resp, nil // a token fetched just now was refused: retrying cannot help
			}
			c.tokens.invalidate(st.tokenKey, st.token)
		}
	}
	st, err = c.authorize(ctx, next, scope)
	if err != nil {
		closeBody(resp)
		return nil, err
	}
	closeBody(resp)
	return c.send(ctx, blob, method, u, hdr, st.header)
}

// send sends one request. A metadata response (blob false) whose final URL is off the registry's
// origin is refused and closed unread.
func (c *Client) send(ctx context.Context, blob bool, method string, u *url.URL, hdr http.Header, authorization string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, newError(Invalid, "building request: %v", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	hc := c.http
	if blob {
		hc = c.blobHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, transportError(err)
	}
	if !blob {
		if err := c.guard.checkFinal(resp); err != nil {
			closeBody(resp)
			return nil, err
		}
	}
	return resp, nil
}
