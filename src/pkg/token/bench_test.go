package token_test

import (
	"net/http/httptest"
	"testing"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/token"
)

// BenchmarkBearer measures what a bearer token adds to a request once its signature was verified:
// the lookup of the remembered claims and the scope check.
func BenchmarkBearer(b *testing.B) {
	svc := newService(&testing.T{}, newKey(&testing.T{}), token.Options{})
	tok, err := svc.Issue("admin", []token.ResourceActions{{Type: "repository", Name: "bench/app", Actions: []string{"pull"}}})
	if err != nil {
		b.Fatal(err)
	}
	a := auth.NewAuthenticator("pw", auth.WithBearer(token.NewVerifier(svc, nil)))
	r := httptest.NewRequest("GET", "/v2/bench/app/manifests/v1", nil)
	r.Header.Set("Authorization", "Bearer "+tok.Raw)
	p := &meta.Project{Name: "bench"}
	b.ReportAllocs()
	for b.Loop() {
		who, err := a.Authenticate(r)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.AuthorizeRepository(r.Context(), who, p, "bench/app", auth.Pull); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUncached is one ES256 verification, what the remembered claims save.
func BenchmarkVerifyUncached(b *testing.B) {
	key := newKey(&testing.T{})
	tok, err := newService(&testing.T{}, key, token.Options{}).Issue("admin", nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := newService(&testing.T{}, key, token.Options{}).Verify(tok.Raw); err != nil {
			b.Fatal(err)
		}
	}
}
