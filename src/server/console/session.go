package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// cookieName holds the session ID. The session (user, CSRF token, expiry) is in a SessionStore under a
// hash of that ID.
const cookieName = "berth_session"

// SessionStore keeps console sessions, CSRF tokens included, where every node and the next start of
// Berth find them: the metadata database (meta.SessionStore, which sqlstore implements), Redis
// (NewCacheSessions) or, for one process only, NewMemorySessions. Keys are hashes of session IDs.
type SessionStore = meta.SessionStore

// session is a logged-in user: the stored session plus the ID from the cookie.
type session struct {
	id string // the cookie's value; only its hash (stored.Key) is stored
	meta.Session
}

// sessions starts, finds and ends sessions in a SessionStore.
type sessions struct {
	ttl   time.Duration
	now   func() time.Time
	store SessionStore
	log   *slog.Logger
}

// who is what Authorize is asked about for this session's requests: the user as it logged in (a
// sysadmin flag changed since takes effect at the next login; project roles are read per request).
func (ss *session) who() auth.Principal {
	return auth.Principal{Name: ss.User, UserID: ss.UserID, Admin: ss.Admin}
}

// token returns 32 random bytes, base64url-encoded.
func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionKey is the store key of a session ID: its SHA-256, so the store holds nothing a browser could
// send back. The ID has 256 random bits, so no salt or slow hash is needed.
func sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// start creates and stores a session for who.
func (s *sessions) start(ctx context.Context, who auth.Principal) (*session, error) {
	id := token()
	ss := &session{id: id, Session: meta.Session{Key: sessionKey(id), User: who.Name, UserID: who.UserID, Admin: who.Admin, CSRF: token(),
		Expires: s.now().Add(s.ttl).Truncate(time.Microsecond)}}
	if err := s.store.PutSession(ctx, &ss.Session, s.now()); err != nil {
		return nil, err
	}
	return ss, nil
}

// get returns the live session of the request's cookie, or nil. A store that fails counts as no
// session (the visitor sees the anonymous pages and a POST is refused), and is logged.
func (s *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	st, err := s.store.GetSession(r.Context(), sessionKey(c.Value), s.now())
	if err != nil {
		if !errors.Is(err, meta.ErrNotFound) {
			s.log.WarnContext(r.Context(), "reading the console session failed", "err", err)
		}
		return nil
	}
	return &session{id: c.Value, Session: *st}
}

// end removes a session from the store.
func (s *sessions) end(ctx context.Context, ss *session) error {
	return s.store.DeleteSession(ctx, ss.Key)
}

// validCSRF compares the form's token with the session's in constant time.
func (ss *session) validCSRF(r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(ss.CSRF)) == 1
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
		c.Value, c.Expires = ss.id, ss.Expires
		c.MaxAge = max(1, int(ss.Expires.Sub(s.now()).Seconds()))
	}
	http.SetCookie(w, c)
}
