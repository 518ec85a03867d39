package auth

import (
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/syncutil"
)

// loginCache remembers successful password checks for ttl, keyed by an HMAC of user name and password,
// so that a client sending Basic credentials on every request pays the password hash once per ttl.
// Bounded by syncutil.TTLMap's rule (the bounded map of every in-process cache). A ttl <= 0 caches
// nothing.
type loginCache struct {
	mac []byte
	ttl time.Duration
	m   *syncutil.TTLMap[[32]byte, loginEntry]
}

type loginEntry struct {
	user string // for forget
	p    Principal
}

func newLoginCache(mac []byte, ttl time.Duration, maxEntries int) *loginCache {
	return &loginCache{mac: mac, ttl: ttl, m: syncutil.NewTTLMap[[32]byte, loginEntry](maxEntries, nil)}
}

func (c *loginCache) key(user, pass string) [32]byte { return keyFor(c.mac, user, pass) }

func (c *loginCache) get(k [32]byte) (Principal, bool) {
	e, ok := c.m.Get(k)
	return e.p, ok
}

func (c *loginCache) put(k [32]byte, user string, p Principal) {
	c.m.Put(k, loginEntry{user: user, p: p}, c.ttl)
}

// forget drops every entry of user.
func (c *loginCache) forget(user string) {
	c.m.DeleteFunc(func(_ [32]byte, e loginEntry) bool { return e.user == user })
}

// roleCache remembers project roles (0 for none) for ttl, keyed by project and user ID. Bounded like
// loginCache.
type roleCache struct {
	ttl time.Duration
	m   *syncutil.TTLMap[[2]int64, meta.Role]
}

func newRoleCache(ttl time.Duration, maxEntries int) *roleCache {
	return &roleCache{ttl: ttl, m: syncutil.NewTTLMap[[2]int64, meta.Role](maxEntries, nil)}
}

func (c *roleCache) get(projectID, userID int64) (meta.Role, bool) {
	return c.m.Get([2]int64{projectID, userID})
}

func (c *roleCache) put(projectID, userID int64, role meta.Role) {
	c.m.Put([2]int64{projectID, userID}, role, c.ttl)
}

func (c *roleCache) clear() { c.m.Clear() }
