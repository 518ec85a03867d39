// Package upstream is Berth's client of an upstream registry (the registry behind a proxy-cache
// project): manifests, blobs, tags and referrers over the OCI distribution API, with challenge-driven
// authentication (Basic, or Bearer tokens cached per scope), hardened handling of untrusted answers
// (bounded bodies, digest checks, same-origin pagination with a page cap) and the referrers tag-schema
// fallback for upstreams without the referrers API.
//
// A Client is safe for concurrent use and holds per-upstream state (learnt authentication challenge,
// cached tokens, referrers capability): build one per configured registry and reuse it. Every error it
// returns is an *Error; test it with IsNotFound, IsRateLimited and the other helpers.
//
// Repository names passed to the methods are the names as Berth's clients see them below the project;
// UpstreamRepo maps them to the upstream's names (Docker Hub's implicit "library/").
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Registry types (Harbor's names).
const (
	TypeDockerRegistry = "docker-registry"
	TypeDockerHub      = "docker-hub"
	TypeHarbor         = "harbor"
	TypeGHCR           = "github-ghcr"
)

// MaxMetadataSize caps every metadata body read from an upstream (manifests, tag lists, referrers
// pages, token answers): 4 MiB. A larger body is an Invalid error, never silently truncated.
const MaxMetadataSize = 4 << 20

// Endpoint is an upstream registry as configured (Harbor's registry record).
type Endpoint struct {
	// URL is the registry's base URL, e.g. "https://registry-1.docker.io". http and https are accepted;
	// credentials in the URL are not (use Username and Password).
	URL string
	// Insecure skips TLS certificate verification.
	Insecure bool
	// CACertificate is an optional PEM bundle trusted in addition to the system roots.
	CACertificate string
	// Username and Password are sent only when the upstream asks for them: as Basic credentials to a
	// Basic challenge, or to the token service of a Bearer challenge. Both empty means anonymous.
	Username, Password string
	// Type is one of TypeDockerRegistry (default when empty), TypeDockerHub, TypeHarbor, TypeGHCR.
	Type string
}

// Options tune a Client. Zero values take the documented defaults.
type Options struct {
	// DialTimeout bounds establishing a TCP connection (default 10s).
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake (default 10s).
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers after a request is sent (default 30s).
	ResponseHeaderTimeout time.Duration
	// RequestTimeout bounds one metadata request including reading its body (default 2m). Blob
	// downloads are bounded only by the caller's context.
	RequestTimeout time.Duration
	// MaxConnsPerHost bounds connections per upstream host (default 64); MaxIdleConnsPerHost bounds the
	// idle ones kept for reuse (default 16).
	MaxConnsPerHost     int
	MaxIdleConnsPerHost int
	// Proxy selects an HTTP proxy per request (nil: direct). main may pass http.ProxyFromEnvironment.
	Proxy func(*http.Request) (*url.URL, error)
	// WrapTransport, when set, wraps the client's transport (instrumentation, request counting in tests).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// Logger receives debug and warning records (default: discarded). Secrets are never logged.
	Logger *slog.Logger
	// MaxPages caps the pages followed for one tag list or referrers list (default 50); needing more
	// is an Invalid error.
	MaxPages int
	// MaxReferrersBytes caps the bytes read for one referrers list across all its pages (default 4 MiB);
	// MaxReferrersEntries caps the descriptors it may hold (default 10,000). Exceeding either is an
	// Invalid error: the list is not returned, so nothing partial is cached.
	MaxReferrersBytes   int64
	MaxReferrersEntries int
	// MaxTagListBytes caps the bytes read for one tag list across all its pages (default 4 MiB); MaxTags
	// caps the distinct tags it may hold (default 100,000). Exceeding either is an Invalid error.
	MaxTagListBytes int64
	MaxTags         int
	// TagPageSize, when > 0, is sent as ?n= on the first tag-list request (default 0: not sent, the
	// upstream decides).
	TagPageSize int
	// ReprobeInterval is how long an upstream found without the referrers API is served from the
	// referrers tag schema before the API is tried again (default 10m).
	ReprobeInterval time.Duration
	// UserAgent is sent on every request (default "berth").
	UserAgent string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// RegistryAddressClass is the address class treated as the registry's own (see ClassifyAddress):
	// hosts other than the registry's (blob redirect targets, token realms) are reached only at public
	// addresses or addresses of this class. AddressUnknown (the default) learns it from the address the
	// registry's host resolves to when dialled. Tests set AddressPublic to run a registry on 127.0.0.1
	// as if it were on the internet.
	RegistryAddressClass AddressClass
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.DialTimeout, 10*time.Second)
	def(&o.TLSHandshakeTimeout, 10*time.Second)
	def(&o.ResponseHeaderTimeout, 30*time.Second)
	def(&o.RequestTimeout, 2*time.Minute)
	def(&o.ReprobeInterval, 10*time.Minute)
	if o.MaxConnsPerHost <= 0 {
		o.MaxConnsPerHost = 64
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = 16
	}
	if o.MaxPages <= 0 {
		o.MaxPages = 50
	}
	if o.MaxReferrersBytes <= 0 {
		o.MaxReferrersBytes = MaxMetadataSize
	}
	if o.MaxReferrersEntries <= 0 {
		o.MaxReferrersEntries = 10000
	}
	if o.MaxTagListBytes <= 0 {
		o.MaxTagListBytes = MaxMetadataSize
	}
	if o.MaxTags <= 0 {
		o.MaxTags = 100000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.UserAgent == "" {
		o.UserAgent = "berth"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Client talks to one upstream registry. It is safe for concurrent use.
type Client struct {
	ep    Endpoint
	base  *url.URL // scheme and host of the registry API, no path: the registry's origin
	guard *guard
	// http sends registry metadata requests and token requests: redirects stay on the first request's
	// origin. blobHTTP sends blob downloads: redirects may leave the origin, without credentials.
	http     *http.Client
	blobHTTP *http.Client
	log      *slog.Logger
	opts     Options

	authMu    sync.RWMutex
	challenge challenge // the last challenge the upstream answered with; zero until the first 401
	tokens    *tokenCache

	// referrers API capability: refState is one of capUnknown/capSupported/capUnsupported; refProbe is
	// the time (UnixNano) of the last probe that found the API unsupported.
	refState atomic.Int32
	refProbe atomic.Int64
}

// NewClient validates ep and returns a client for it. An unknown Type is an Unsupported error; a bad
// URL or CA certificate is an Invalid error.
func NewClient(ep Endpoint, opts Options) (*Client, error) {
	opts.setDefaults()
	switch ep.Type {
	case "":
		ep.Type = TypeDockerRegistry
	case TypeDockerRegistry, TypeDockerHub, TypeHarbor, TypeGHCR:
	default:
		return nil, newError(Unsupported, "registry type %q is not supported", ep.Type)
	}
	base, err := parseBaseURL(ep)
	if err != nil {
		return nil, err
	}
	g := newGuard(base, opts.RegistryAddressClass)
	rt, err := newTransport(ep, opts, g)
	if err != nil {
		return nil, err
	}
	c := &Client{
		ep:       ep,
		base:     base,
		guard:    g,
		http:     &http.Client{Transport: rt, CheckRedirect: g.checkRedirect},
		blobHTTP: &http.Client{Transport: rt, CheckRedirect: g.checkBlobRedirect},
		log:      opts.Logger.With("upstream", base.Host),
		opts:     opts,
	}
	c.tokens = newTokenCache(opts.Now)
	return c, nil
}

func parseBaseURL(ep Endpoint) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(ep.URL))
	if err != nil {
		return nil, newError(Invalid, "registry URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, newError(Invalid, "registry URL %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, newError(Invalid, "registry URL %q has no host", u.Redacted())
	}
	if u.User != nil {
		return nil, newError(Invalid, "registry URL %q: put credentials in Username and Password, not in the URL", u.Redacted())
	}
	if ep.Type == TypeDockerHub {
		// Harbor's Docker Hub registries are configured as hub.docker.com; the registry API is elsewhere.
		switch strings.ToLower(u.Hostname()) {
		case "hub.docker.com", "docker.io", "index.docker.io":
			return &url.URL{Scheme: "https", Host: "registry-1.docker.io"}, nil
		}
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// Endpoint returns the endpoint the client was built with.
func (c *Client) Endpoint() Endpoint { return c.ep }

// UpstreamRepo maps a repository name to the upstream's: for Docker Hub a single-segment name "alpine"
// is "library/alpine". Every method applies it to its repo argument.
func (c *Client) UpstreamRepo(repo string) string {
	if c.ep.Type == TypeDockerHub && repo != "" && !strings.Contains(repo, "/") {
		return "library/" + repo
	}
	return repo
}

// url builds an absolute URL for a /v2/ path whose segments are already escaped where needed.
func (c *Client) url(path string) *url.URL {
	u := *c.base
	u.Path = path
	return &u
}

// repoURL builds /v2/<upstream repo>/<kind>/<ref>.
func (c *Client) repoURL(repo, kind, ref string) *url.URL {
	return c.url("/v2/" + repo + "/" + kind + "/" + ref)
}

// Ping checks that the endpoint is a reachable v2 registry and that the configured credentials (if any)
// are accepted: GET /v2/, answering the authentication challenge. nil on 200. A 404 is Unsupported
// (not a v2 registry).
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, c.url("/v2/"), nil, "")
	if err != nil {
		return err
	}
	defer closeBody(resp)
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusNotFound:
		e := statusError(resp)
		e.Kind = Unsupported
		return e
	default:
		return statusError(resp)
	}
}

// errTooLarge marks a body over MaxMetadataSize.
var errTooLarge = errors.New("body exceeds the metadata size limit")

// readBody reads resp's body up to MaxMetadataSize, then drains and closes it. An oversize body is an
// Invalid error.
func readBody(resp *http.Response) ([]byte, error) {
	defer closeBody(resp)
	if resp.ContentLength > MaxMetadataSize {
		return nil, &Error{Kind: Invalid, Status: resp.StatusCode,
			Err: fmt.Errorf("%s: %w (%d > %d bytes)", redactedPath(resp), errTooLarge, resp.ContentLength, MaxMetadataSize)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetadataSize+1))
	if err != nil {
		return nil, &Error{Kind: Unavailable, Status: resp.StatusCode, Err: fmt.Errorf("%s: reading body: %w", redactedPath(resp), err)}
	}
	if len(body) > MaxMetadataSize {
		return nil, &Error{Kind: Invalid, Status: resp.StatusCode,
			Err: fmt.Errorf("%s: %w (%d bytes)", redactedPath(resp), errTooLarge, MaxMetadataSize)}
	}
	return body, nil
}
