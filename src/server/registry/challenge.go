package registry

import (
	"errors"
	"net/http"
	"strings"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/reference"
)

// challenge sets the Bearer challenge of an UNAUTHORIZED answer, with the scope the request needs
// (https://distribution.github.io/distribution/spec/auth/token/#how-to-authenticate). A request that
// carried a token its scopes do not cover is told error="insufficient_scope".
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request, err error) {
	var e *errcode.Error
	if !errors.As(err, &e) || e.Code.Status != http.StatusUnauthorized {
		return
	}
	realm := h.bearer.Realm
	if realm == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		realm = scheme + "://" + r.Host + h.bearer.RealmPath
	}
	var b strings.Builder
	b.WriteString(`Bearer realm="` + quote(realm) + `",service="` + quote(h.bearer.Service) + `"`)
	if scope := h.scopeOf(r); scope != "" {
		// A request the mirror router sent to another repository needs a token for that one too.
		var routed *routedError
		if errors.As(err, &routed) {
			actions := routed.actions
			if actions == "" {
				actions = scope[strings.LastIndexByte(scope, ':'):]
			}
			scope += " repository:" + routed.name + actions
		}
		b.WriteString(`,scope="` + quote(scope) + `"`)
	}
	if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		b.WriteString(`,error="insufficient_scope"`)
	}
	w.Header().Set("WWW-Authenticate", b.String())
}

// scopeOf is the token scope a request needs: "" for /v2/.
func (h *Handler) scopeOf(r *http.Request) string {
	rt, err := h.parse(r.URL.Path)
	if err != nil {
		return ""
	}
	switch rt.Kind {
	case reference.KindBase:
		return ""
	case reference.KindCatalog:
		return "registry:catalog:*"
	}
	ep, ok := h.table[rt.Kind][r.Method]
	if !ok {
		return ""
	}
	switch ep.act {
	case auth.Push:
		return "repository:" + rt.Name + ":pull,push"
	case auth.Delete:
		return "repository:" + rt.Name + ":delete"
	}
	return "repository:" + rt.Name + ":pull"
}

// routedError is a refusal that needs a token for repository name besides the one in the request's
// path: the repository the mirror router sent the request to, or a mount's source.
type routedError struct {
	error
	name    string
	actions string // ":pull" and the like; "" = the same actions as the request's own scope
}

func (e *routedError) Unwrap() error { return e.error }

// grantsCatalog reports whether a token principal's scopes include registry:catalog:*.
func grantsCatalog(who auth.Principal) bool {
	c, ok := who.Limit.(interface{ AllowsCatalog() bool })
	return ok && c.AllowsCatalog()
}

// quote escapes a challenge parameter value (RFC 9110 quoted-string).
func quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
