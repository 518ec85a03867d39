package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"github.com/berth-registry/berth/src/pkg/auth"
	"net/http"
	"sync"
	"time"
)

// cookieName holds the session ID. The session itself (user, CSRF token, expiry) stays in this process.
const cookieName = "berth_session"

// maxSessions bounds the sessions held; when full, expired ones are dropped, then the oldest.
const maxSessions = 10000

// session is a logged-in user.
type session struct {
	id      string
	user    string
	admin   bool
	who     auth.Principal // what Authorize is asked about for this session's requests
	csrf    string         // sent back in every state-changing form as the "csrf" field
	expires time.Time
}

// sessions is an in-memory session table. Safe for concurrent use.
type sessions struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	all map[string]*session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, all: map[string]*session{}}
}

// token returns 32 random bytes, base64url-encoded.
func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start creates a session for user.
func (s *sessions) start(who auth.Principal) *session {
	ss := &session{id: token(), user: who.Name, admin: who.Admin, who: who, csrf: token(), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.all) >= maxSessions {
		s.evict()
	}
	s.all[ss.id] = ss
	return ss
}

// evict drops expired sessions, then the one closest to expiry if none was. Called with mu held.
func (s *sessions) evict() {
	now := s.now()
	var oldest *session
	for id, ss := range s.all {
		if !now.Before(ss.expires) {
			delete(s.all, id)
		} else if oldest == nil || ss.expires.Before(oldest.expires) {
			oldest = ss
		}
	}
	if len(s.all) >= maxSessions && oldest != nil {
		delete(s.all, oldest.id)
	}
}

// get returns the live session of the request's cookie, or nil.
func (s *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.all[c.Value]
	if ss == nil {
		return nil
	}
	if !s.now().Before(ss.expires) {
		delete(s.all, ss.id)
		return nil
	}
	return ss
}

// end removes a session.
func (s *sessions) end(ss *session) {
	s.mu.Lock()
	delete(s.all, ss.id)
	s.mu.Unlock()
}

// validCSRF compares the form's token with the session's in constant time.
func (ss *session) validCSRF(r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(ss.csrf)) == 1
}

// setCookie writes the session cookie: HttpOnly, SameSite=Strict, Secure on TLS connections, expiring
// with the session. A nil session clears the cookie.
func (s *sessions) setCookie(w http.ResponseWriter, r *http.Request, ss *session) {
	// Secure only on TLS: a browser drops a Secure cookie set over plain HTTP (make run), and then no one
	// could log in. HttpOnly and SameSite=Strict hold on both.
	c := &http.Cookie{Name: cookieName, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, //nolint:gosec // G124: see above
		Secure: r.TLS != nil}
	if ss == nil {
		c.MaxAge = -1
	} else {
		c.Value, c.Expires = ss.id, ss.expires
		c.MaxAge = max(1, int(ss.expires.Sub(s.now()).Seconds()))
	}
	http.SetCookie(w, c)
}
