package registry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/registry"
	"github.com/berth-registry/berth/src/pkg/registry/registrytest"
)

func TestNewClientValidates(t *testing.T) {
	cases := []struct {
		name string
		ep   registry.Endpoint
		kind registry.Kind
	}{
		{"unknown type", registry.Endpoint{URL: "https://r.example", Type: "aws-ecr"}, registry.Unsupported},
		{"no scheme", registry.Endpoint{URL: "r.example"}, registry.Invalid},
		{"ftp", registry.Endpoint{URL: "ftp://r.example"}, registry.Invalid},
		{"credentials in URL", registry.Endpoint{URL: "https://u:p@r.example"}, registry.Invalid},
		{"bad CA", registry.Endpoint{URL: "https://r.example", CACertificate: "not pem"}, registry.Invalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := registry.NewClient(tc.ep, registry.Options{})
			e := requireKind(t, err, tc.kind)
			require.NotContains(t, e.Error(), ":p@", "no secret in error text")
		})
	}
	for _, typ := range []string{"", registry.TypeDockerRegistry, registry.TypeDockerHub, registry.TypeHarbor, registry.TypeGHCR} {
		_, err := registry.NewClient(registry.Endpoint{URL: "https://r.example", Type: typ}, registry.Options{})
		require.NoError(t, err, typ)
	}
}

func TestUpstreamRepo(t *testing.T) {
	hub := newClient(t, registry.Endpoint{URL: "https://hub.docker.com", Type: registry.TypeDockerHub}, registry.Options{})
	plain := newClient(t, registry.Endpoint{URL: "https://r.example"}, registry.Options{})
	for in, want := range map[string]string{"alpine": "library/alpine", "library/alpine": "library/alpine", "bitnami/redis": "bitnami/redis"} {
		require.Equal(t, want, hub.UpstreamRepo(in))
		require.Equal(t, in, plain.UpstreamRepo(in))
	}
}

func TestPing(t *testing.T) {
	ctx := context.Background()
	t.Run("distribution anonymous", func(t *testing.T) {
		up := registrytest.NewDistribution(t)
		require.NoError(t, newClient(t, registry.Endpoint{URL: up.URL}, registry.Options{}).Ping(ctx))
	})
	t.Run("basic auth over TLS with the CA", func(t *testing.T) {
		up := registrytest.NewDistribution(t, registrytest.WithTLS(), registrytest.WithBasicAuth("alice", "s3cret"))
		ep := registry.Endpoint{URL: up.URL, CACertificate: up.CACertificate, Username: "alice", Password: "s3cret"}
		require.NoError(t, newClient(t, ep, registry.Options{}).Ping(ctx))

		ep.Password = "wrong"
		err := newClient(t, ep, registry.Options{}).Ping(ctx)
		e := requireKind(t, err, registry.Unauthorized)
		require.Equal(t, http.StatusUnauthorized, e.Status)
		require.NotContains(t, err.Error(), "wrong")

		ep.Username, ep.Password = "", ""
		requireKind(t, newClient(t, ep, registry.Options{}).Ping(ctx), registry.Unauthorized)
	})
	t.Run("TLS without the CA fails, insecure passes", func(t *testing.T) {
		up := registrytest.NewDistribution(t, registrytest.WithTLS())
		requireKind(t, newClient(t, registry.Endpoint{URL: up.URL}, registry.Options{}).Ping(ctx), registry.Unavailable)
		require.NoError(t, newClient(t, registry.Endpoint{URL: up.URL, Insecure: true}, registry.Options{}).Ping(ctx))
	})
	t.Run("bearer anonymous and with credentials", func(t *testing.T) {
		ta := registrytest.NewTokenAuth(t, "test-registry")
		up := registrytest.NewGGCR(t, true, registrytest.WithWrapper(ta.Middleware))
		require.NoError(t, newClient(t, registry.Endpoint{URL: up.URL}, registry.Options{}).Ping(ctx))

		ta.SetCredentials("bob", "hunter2")
		require.NoError(t, newClient(t, registry.Endpoint{URL: up.URL, Username: "bob", Password: "hunter2"}, registry.Options{}).Ping(ctx))
		err := newClient(t, registry.Endpoint{URL: up.URL, Username: "bob", Password: "nope"}, registry.Options{}).Ping(ctx)
		requireKind(t, err, registry.Unauthorized)
		require.NotContains(t, err.Error(), "nope")
	})
	t.Run("not a registry", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		t.Cleanup(srv.Close)
		requireKind(t, newClient(t, registry.Endpoint{URL: srv.URL}, registry.Options{}).Ping(ctx), registry.Unsupported)
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		requireKind(t, newClient(t, registry.Endpoint{URL: srv.URL}, registry.Options{}).Ping(ctx), registry.Unavailable)
	})
}
