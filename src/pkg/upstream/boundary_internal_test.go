package upstream

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClassifyAddress(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want AddressClass
	}{
		{"8.8.8.8", AddressPublic}, {"2606:4700::1111", AddressPublic}, {"172.32.0.1", AddressPublic},
		{"10.0.0.5", AddressPrivate}, {"172.16.0.1", AddressPrivate}, {"172.31.255.255", AddressPrivate},
		{"192.168.1.1", AddressPrivate}, {"fd00::1", AddressPrivate}, {"fc00::1", AddressPrivate}, {"100.64.0.1", AddressPrivate},
		{"169.254.169.254", AddressLinkLocal}, {"fe80::1", AddressLinkLocal},
		{"127.0.0.1", AddressLoopback}, {"127.9.9.9", AddressLoopback}, {"::1", AddressLoopback},
		{"0.0.0.0", AddressLoopback}, {"0.1.2.3", AddressLoopback}, {"::", AddressLoopback},
		{"::ffff:127.0.0.1", AddressLoopback}, {"::ffff:10.1.2.3", AddressPrivate}, {"::ffff:169.254.169.254", AddressLinkLocal},
	} {
		require.Equal(t, tc.want, ClassifyAddress(netip.MustParseAddr(tc.ip)), tc.ip)
	}
}

// TestDialChecksResolvedAddress: a name that resolves to loopback is refused on the dialled IP, before a
// connection is made, when the registry is public; the registry's own host is always dialled and teaches
// its class.
func TestDialChecksResolvedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	accepted := make(chan struct{}, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			_ = c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	dial := func(g *guard, addr string) error {
		c, err := g.dialContext(&net.Dialer{})(context.Background(), "tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err
	}

	public := newGuard(&url.URL{Scheme: "https", Host: "registry.example"}, AddressPublic)
	err = dial(public, "localhost:"+port)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, Invalid, e.Kind)
	require.Empty(t, accepted, "no connection may be made")

	// The registry itself on "localhost": dialled, and its class learnt as loopback.
	own := newGuard(&url.URL{Scheme: "http", Host: "localhost:" + port}, AddressUnknown)
	require.Equal(t, AddressPublic, own.registryClass(), "unknown until dialled: strictest")
	require.NoError(t, dial(own, "localhost:"+port))
	<-accepted
	require.Equal(t, AddressLoopback, own.registryClass())
	// Another host on loopback is now allowed: the registry is on loopback itself.
	require.NoError(t, dial(own, "127.0.0.1:"+port))
	<-accepted

	// A configured HTTP proxy is dialled whatever its address.
	proxied := newGuard(&url.URL{Scheme: "https", Host: "registry.example"}, AddressPublic)
	proxied.proxies.Store("127.0.0.1:"+port, true)
	require.NoError(t, dial(proxied, "127.0.0.1:"+port))
	<-accepted
}
