package registrytest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TokenAuth is a Docker-Hub-style Bearer token service plus the middleware that demands its tokens.
// Wrap a registry with WithWrapper(ta.Middleware). Tokens are scoped: "repository:<name>:pull" grants
// reads of <name>; a token without a scope is good for GET /v2/ only.
type TokenAuth struct {
	// Realm is the token endpoint's URL; Service the service name in the challenge.
	Realm   string
	Service string
	// ExpiresIn is sent as expires_in (seconds) when > 0.
	ExpiresIn int
	// AccessTokenField answers with "access_token" instead of "token".
	AccessTokenField bool

	requests   atomic.Int64
	mu         sync.Mutex
	user, pass string
	tokens     map[string]string // token -> scope
	scopes     []string          // scopes requested, in order
}

// NewTokenAuth starts the token service (closed by t.Cleanup).
func NewTokenAuth(t testing.TB, service string) *TokenAuth {
	t.Helper()
	ta := &TokenAuth{Service: service, tokens: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(ta.serveToken))
	t.Cleanup(srv.Close)
	ta.Realm = srv.URL + "/token"
	return ta
}

// SetCredentials makes token requests require these Basic credentials ("" user: anonymous tokens).
func (ta *TokenAuth) SetCredentials(user, pass string) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.user, ta.pass = user, pass
}

// Requests is the number of token requests served (including refused ones).
func (ta *TokenAuth) Requests() int64 { return ta.requests.Load() }

// Scopes returns the scopes of the token requests so far, in order ("" for none).
func (ta *TokenAuth) Scopes() []string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return append([]string(nil), ta.scopes...)
}

// RevokeAll invalidates every token issued so far.
func (ta *TokenAuth) RevokeAll() {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	clear(ta.tokens)
}

func (ta *TokenAuth) serveToken(w http.ResponseWriter, r *http.Request) {
	ta.requests.Add(1)
	scope := r.URL.Query().Get("scope")
	ta.mu.Lock()
	ta.scopes = append(ta.scopes, scope)
	ta.mu.Unlock()
	if r.URL.Path != "/token" || r.URL.Query().Get("service") != ta.Service {
		http.Error(w, "unknown service", http.StatusBadRequest)
		return
	}
	ta.mu.Lock()
	user, pass := ta.user, ta.pass
	ta.mu.Unlock()
	if user != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprint(w, `{"details":"incorrect username or password"}`)
			return
		}
	}
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	tok := hex.EncodeToString(raw)
	ta.mu.Lock()
	ta.tokens[tok] = scope
	ta.mu.Unlock()
	field := "token"
	if ta.AccessTokenField {
		field = "access_token"
	}
	answer := map[string]any{field: tok}
	if ta.ExpiresIn > 0 {
		answer["expires_in"] = ta.ExpiresIn
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

// Middleware demands a valid token whose scope covers the repository of the request.
func (ta *TokenAuth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repo := repoOf(r.URL.Path)
		want := ""
		if repo != "" {
			want = "repository:" + repo + ":pull"
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		ta.mu.Lock()
		scope, valid := ta.tokens[tok]
		ta.mu.Unlock()
		if !ok || !valid || (want != "" && scope != want) {
			ch := fmt.Sprintf(`Bearer realm=%q,service=%q`, ta.Realm, ta.Service)
			if want != "" {
				ch += fmt.Sprintf(`,scope=%q`, want)
			}
			w.Header().Set("WWW-Authenticate", ch)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// repoOf extracts <name> from /v2/<name>/(manifests|blobs|tags|referrers)/..., "" for other paths.
func repoOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	for i := len(parts) - 2; i >= 1; i-- {
		switch parts[i] {
		case "manifests", "blobs", "tags", "referrers":
			return strings.Join(parts[:i], "/")
		}
	}
	return ""
}
