package upstream_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/upstream"
	"github.com/berth-registry/berth/src/pkg/upstream/registrytest"
)

func TestNewClientValidates(t *testing.T) {
	cases := []struct {
		name string
		ep   upstream.Endpoint
		kind upstream.Kind
	}{
		{"unknown type", upstream.Endpoint{URL: "https://r.example", Type: "aws-ecr"}, upstream.Unsupported},
		{"no scheme", upstream.Endpoint{URL: "r.example"}, upstream.Invalid},
		{"ftp", upstream.Endpoint{URL: "ftp://r.example"}, upstream.Invalid},
		{"credentials in URL", upstream.Endpoint{URL: "https://u:p@r.example"}, upstream.Invalid},
		{"bad CA", upstream.Endpoint{URL: "https://r.example", CACertificate: "not pem"}, upstream.Invalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := upstream.NewClient(tc.ep, upstream.Options{})
			e := requireKind(t, err, tc.kind)
			require.NotContains(t, e.Error(), ":p@", "no secret in error text")
		})
	}
	for _, typ := range []string{"", upstream.TypeDockerRegistry, upstream.TypeDockerHub, upstream.TypeHarbor, upstream.TypeGHCR} {
		_, err := upstream.NewClient(upstream.Endpoint{URL: "https://r.example", Type: typ}, upstream.Options{})
		require.NoError(t, err, typ)
	}
}

func TestUpstreamRepo(t *testing.T) {
	hub := newClient(t, upstream.Endpoint{URL: "https://hub.docker.com", Type: upstream.TypeDockerHub}, upstream.Options{})
	plain := newClient(t, upstream.Endpoint{URL: "https://r.example"}, upstream.Options{})
	for in, want := range map[string]string{"alpine": "library/alpine", "library/alpine": "library/alpine", "bitnami/redis": "bitnami/redis"} {
		require.Equal(t, want, hub.UpstreamRepo(in))
		require.Equal(t, in, plain.UpstreamRepo(in))
	}
}

func TestPing(t *testing.T) {
	ctx := context.Background()
	t.Run("distribution anonymous", func(t *testing.T) {
		up := registrytest.NewDistribution(t)
		require.NoError(t, newClient(t, upstream.Endpoint{URL: up.URL}, upstream.Options{}).Ping(ctx))
	})
	t.Run("basic auth over TLS with the CA", func(t *testing.T) {
		up := registrytest.NewDistribution(t, registrytest.WithTLS(), registrytest.WithBasicAuth("alice", "s3cret"))
		ep := upstream.Endpoint{URL: up.URL, CACertificate: up.CACertificate, Username: "alice", Password: "s3cret"}
		require.NoError(t, newClient(t, ep, upstream.Options{}).Ping(ctx))

		ep.Password = "wrong"
		err := newClient(t, ep, upstream.Options{}).Ping(ctx)
		e := requireKind(t, err, upstream.Unauthorized)
		require.Equal(t, http.StatusUnauthorized, e.Status)
		require.NotContains(t, err.Error(), "wrong")

		ep.Username, ep.Password = "", ""
		requireKind(t, newClient(t, ep, upstream.Options{}).Ping(ctx), upstream.Unauthorized)
	})
	t.Run("TLS without the CA fails, insecure passes", func(t *testing.T) {
		up := registrytest.NewDistribution(t, registrytest.WithTLS())
		requireKind(t, newClient(t, upstream.Endpoint{URL: up.URL}, upstream.Options{}).Ping(ctx), upstream.Unavailable)
		require.NoError(t, newClient(t, upstream.Endpoint{URL: up.URL, Insecure: true}, upstream.Options{}).Ping(ctx))
	})
	t.Run("bearer anonymous and with credentials", func(t *testing.T) {
		ta := registrytest.NewTokenAuth(t, "test-registry")
		up := registrytest.NewGGCR(t, true, registrytest.WithWrapper(ta.Middleware))
		require.NoError(t, newClient(t, upstream.Endpoint{URL: up.URL}, upstream.Options{}).Ping(ctx))

		ta.SetCredentials("bob", "hunter2")
		require.NoError(t, newClient(t, upstream.Endpoint{URL: up.URL, Username: "bob", Password: "hunter2"}, upstream.Options{}).Ping(ctx))
		err := newClient(t, upstream.Endpoint{URL: up.URL, Username: "bob", Password: "nope"}, upstream.Options{}).Ping(ctx)
		requireKind(t, err, upstream.Unauthorized)
		require.NotContains(t, err.Error(), "nope")
	})
	t.Run("not a registry", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		t.Cleanup(srv.Close)
		requireKind(t, newClient(t, upstream.Endpoint{URL: srv.URL}, upstream.Options{}).Ping(ctx), upstream.Unsupported)
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		requireKind(t, newClient(t, upstream.Endpoint{URL: srv.URL}, upstream.Options{}).Ping(ctx), upstream.Unavailable)
	})
}
