package console

import (
	"net/http"
	"strings"

	"github.com/berth-registry/berth/src/pkg/errcode"
)

func (c *Console) loginForm(q *request) error {
	c.render(q, http.StatusOK, "login", map[string]any{"Title": "Log in", "Next": safeNext(q.r.URL.Query().Get("next"))})
	return nil
}

// login checks the credentials with the API's authenticator and starts a session. The login form has no
// session to carry a CSRF token, so it is refused when the browser says it comes from another origin.
func (c *Console) login(q *request) error {
	r := q.r
	r.Body = http.MaxBytesReader(q.w, r.Body, 1<<16)
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
		return errcode.ErrForbidden.WithMessage("cross-origin login refused")
	}
	user, pass := r.PostFormValue("username"), r.PostFormValue("password")
	check, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "/", nil)
	check.SetBasicAuth(user, pass)
	who, err := c.d.Auth.Authenticate(check)
	next := safeNext(r.PostFormValue("next"))
	if err != nil || who.Name == "" {
		c.render(q, http.StatusUnauthorized, "login", map[string]any{"Title": "Log in", "Next": next,
			"Error": "Invalid username or password.", "Username": user})
		return nil
	}
	if q.sess != nil {
		if err := c.sessions.end(r.Context(), q.sess); err != nil {
			return errcode.ErrInternal.Wrap(err, "ending the previous session")
		}
	}
	ss, err := c.sessions.start(r.Context(), who)
	if err != nil {
		return errcode.ErrInternal.Wrap(err, "starting a session")
	}
	c.sessions.setCookie(q.w, r, ss)
	return redirect(q, next)
}

func (c *Console) logout(q *request) error {
	if err := c.sessions.end(q.r.Context(), q.sess); err != nil {
		return errcode.ErrInternal.Wrap(err, "ending the session")
	}
	c.sessions.setCookie(q.w, q.r, nil)
	return redirect(q, "/projects")
}

// safeNext keeps a redirect target on this site: a path, not "//host" or a URL.
func safeNext(s string) string {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") || strings.ContainsAny(s, "\r\n") {
		return "/projects"
	}
	return s
}
