package upstream

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// The upstream trust boundary. An upstream registry is untrusted: it may answer with redirects and
// pagination links meant to make Berth send its credentials elsewhere, or to make Berth read an internal
// service and stream that to an anonymous client (SSRF). The rules, enforced here and nowhere else:
//
//   - Credentials (Basic, Bearer tokens) go only to the registry's origin (scheme, host and port of its
//     configured URL) and, for token requests, to the challenge's realm. Redirects of registry requests
//     other than blob downloads, and of token requests, must stay on the origin they were sent to; a
//     redirect elsewhere is an Invalid error.
//   - Blob downloads may be redirected to another origin (a CDN, a presigned object-store URL), without
//     Authorization, Cookie or Referer on any hop off the registry's origin.
//   - Any host other than the registry's own (redirect targets, token realms) is reached only at a public
//     address or at an address of the registry's own class (AddressClass): a registry on 127.0.0.1 may
//     redirect to 127.0.0.1, a public one never to loopback, link-local or private ranges. The check runs
//     on the dialled IP, after DNS resolution (so DNS rebinding cannot bypass it), and on IP-literal URLs
//     before any request is sent.

// AddressClass is the kind of network an IP address belongs to.
type AddressClass int32

const (
	// AddressUnknown is the zero value: for Options.RegistryAddressClass it means "learn the registry's
	// class from the address Berth dials for the registry's host".
	AddressUnknown AddressClass = iota
	// AddressPublic is every address not in the classes below.
	AddressPublic
	// AddressPrivate is 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10 and fc00::/7.
	AddressPrivate
	// AddressLinkLocal is 169.254.0.0/16 (cloud metadata services live there) and fe80::/10.
	AddressLinkLocal
	// AddressLoopback is 127.0.0.0/8, ::1, and the unspecified 0.0.0.0/8 and :: (which reach the host).
	AddressLoopback
)

func (c AddressClass) String() string {
	switch c {
	case AddressPublic:
		return "public"
	case AddressPrivate:
		return "private"
	case AddressLinkLocal:
		return "link-local"
	case AddressLoopback:
		return "loopback"
	}
	return "unknown"
}

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	sharedCGNAT = netip.MustParsePrefix("100.64.0.0/10")
)

// ClassifyAddress returns ip's class. IPv4-mapped IPv6 addresses are classified as their IPv4 address.
func ClassifyAddress(ip netip.Addr) AddressClass {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback() || ip.IsUnspecified() || (ip.Is4() && thisNetwork.Contains(ip)):
		return AddressLoopback
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return AddressLinkLocal
	case ip.IsPrivate() || (ip.Is4() && sharedCGNAT.Contains(ip)):
		return AddressPrivate
	}
	return AddressPublic
}

// guard holds the boundary's state for one client: the registry's origin and address class, and the
// HTTP proxies in use (a dial to a configured proxy is the operator's choice, not the upstream's).
type guard struct {
	origin   *url.URL     // the registry's origin
	hostPort string       // the registry's host:port as the transport dials it
	fixed    AddressClass // Options.RegistryAddressClass; AddressUnknown: learnt
	learnt   atomic.Int32 // the class of the address last dialled for the registry's host
	proxies  sync.Map     // host:port of HTTP proxies returned by Options.Proxy
}

func newGuard(origin *url.URL, fixed AddressClass) *guard {
	g := &guard{origin: origin, fixed: fixed}
	g.hostPort = net.JoinHostPort(strings.ToLower(origin.Hostname()), effectivePort(origin))
	if ip, err := netip.ParseAddr(origin.Hostname()); err == nil && fixed == AddressUnknown {
		g.learnt.Store(int32(ClassifyAddress(ip)))
	}
	return g
}

// registryClass is the class other hosts' addresses are allowed to share with the registry.
func (g *guard) registryClass() AddressClass {
	if g.fixed != AddressUnknown {
		return g.fixed
	}
	if c := AddressClass(g.learnt.Load()); c != AddressUnknown {
		return c
	}
	return AddressPublic
}

// allowAddr is the address rule for hosts other than the registry's own.
func (g *guard) allowAddr(host string, ip netip.Addr) error {
	cls := ClassifyAddress(ip)
	if cls == AddressPublic || cls == g.registryClass() {
		return nil
	}
	return newError(Invalid, "refusing to connect to %s: a %s address, and the registry is not on one", host, cls)
}

// proxy wraps Options.Proxy to remember the proxies it selects.
func (g *guard) proxy(p func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	if p == nil {
		return nil
	}
	return func(req *http.Request) (*url.URL, error) {
		u, err := p(req)
		if u != nil {
			g.proxies.Store(net.JoinHostPort(strings.ToLower(u.Hostname()), effectivePort(u)), true)
		}
		return u, err
	}
}

// dialContext dials addr with d, checking the resolved IP of every connection attempt: a dial for the
// registry's own host:port records the registry's address class; any other host must pass allowAddr.
// A dial to a configured HTTP proxy is not checked (the proxy resolves the target's name; IP-literal
// targets are still checked by checkRedirect).
func (g *guard) dialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		key := strings.ToLower(addr)
		own := key == g.hostPort
		if _, viaProxy := g.proxies.Load(key); viaProxy && !own {
			return d.DialContext(ctx, network, addr)
		}
		host, _, _ := net.SplitHostPort(addr)
		dd := *d
		dd.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return newError(Invalid, "dialling %s: unparsable address %q", host, address)
			}
			if own {
				g.learnt.Store(int32(ClassifyAddress(ap.Addr())))
				return nil
			}
			return g.allowAddr(host, ap.Addr())
		}
		return dd.DialContext(ctx, network, addr)
	}
}

// maxRedirects bounds the redirects followed for one request.
const maxRedirects = 10

// checkRedirect is the redirect rule of requests whose redirects must stay on the origin of the first
// request (registry metadata requests and token requests).
func (g *guard) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return newError(Invalid, "stopped after %d redirects", maxRedirects)
	}
	if !sameOrigin(via[0].URL, req.URL) {
		return newError(Invalid, "redirect from %s to another origin %s://%s refused", via[0].URL.Host, req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// checkBlobRedirect is the redirect rule of blob downloads: any origin, but never with credentials off the
// registry's origin, and IP-literal targets only where allowAddr allows (names are checked at dial time).
func (g *guard) checkBlobRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return newError(Invalid, "stopped after %d redirects", maxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return newError(Invalid, "blob redirect to scheme %q refused", req.URL.Scheme)
	}
	if sameOrigin(g.origin, req.URL) {
		return nil
	}
	// Go copies the first request's headers to every hop and drops Authorization only for hosts that
	// are not subdomains of the first; Berth drops it on every hop off the registry's origin.
	for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie", "Referer"} {
		req.Header.Del(h)
	}
	if ip, err := netip.ParseAddr(req.URL.Hostname()); err == nil {
		return g.allowAddr(req.URL.Host, ip)
	}
	if strings.EqualFold(req.URL.Hostname(), "localhost") || strings.HasSuffix(strings.ToLower(req.URL.Hostname()), ".localhost") {
		return g.allowAddr(req.URL.Host, netip.IPv6Loopback())
	}
	return nil
}

// checkFinal is the rule on a response before its bytes are used: a metadata response must come from
// the registry's origin (a belt over checkRedirect's braces).
func (g *guard) checkFinal(resp *http.Response) error {
	if resp.Request == nil || sameOrigin(g.origin, resp.Request.URL) {
		return nil
	}
	return newError(Invalid, "response from another origin %s://%s refused", resp.Request.URL.Scheme, resp.Request.URL.Host)
}
