package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/opencontainers/go-digest"
)

// newTransport builds the HTTP transport for ep: system roots plus ep.CACertificate, optional
// verification skip, bounded dial / handshake / header waits and connection counts, HTTP/1.1 and HTTP/2,
// and g's address rule on every dialled IP.
func newTransport(ep Endpoint, opts Options, g *guard) (http.RoundTripper, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ep.CACertificate != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(ep.CACertificate)) {
			return nil, newError(Invalid, "the CA certificate holds no PEM certificate")
		}
		tlsCfg.RootCAs = pool
	}
	if ep.Insecure {
		tlsCfg.InsecureSkipVerify = true //nolint:gosec // the administrator asked for it on this endpoint
	}
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	var rt http.RoundTripper = &http.Transport{
		Proxy:                 g.proxy(opts.Proxy),
		DialContext:           g.dialContext(dialer),
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   opts.TLSHandshakeTimeout,
		ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          4 * opts.MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:   opts.MaxIdleConnsPerHost,
		MaxConnsPerHost:       opts.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	if opts.WrapTransport != nil {
		rt = opts.WrapTransport(rt)
	}
	return rt, nil
}

var (
	repoPattern = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagPattern  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// checkRepo validates a repository name (after UpstreamRepo) so that it cannot alter the request path.
func checkRepo(repo string) error {
	if len(repo) > 255 || !repoPattern.MatchString(repo) {
		return newError(Invalid, "invalid repository name %q", repo)
	}
	return nil
}

// checkRef validates a manifest reference: a tag or a digest.
func checkRef(ref string) error {
	if tagPattern.MatchString(ref) {
		return nil
	}
	if _, err := digest.Parse(ref); err == nil {
		return nil
	}
	return newError(Invalid, "invalid reference %q", ref)
}
