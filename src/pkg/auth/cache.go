package auth

import (
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// loginCache remembers successful password checks for ttl, keyed by an HMAC of user name and password,
// so that a client sending Basic credentials on every request pays the password hash once per ttl.
// Bounded: when full, it is emptied (the next checks refill it).
type loginCache struct {
	mac []byte
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[[32]byte]loginEntry
}

type loginEntry struct {
	user    string
	p       Principal
	expires time.Time
}

func newLoginCache(mac []byte, ttl time.Duration, maxEntries int) *loginCache {
	return &loginCache{mac: mac, ttl: ttl, max: maxEntries, entries: map[[32]byte]loginEntry{}}
}

func (c *loginCache) key(user, pass string) [32]byte { return keyFor(c.mac, user, pass) }

func (c *loginCache) get(k [32]byte) (Principal, bool) {
	if c.ttl <= 0 {
		return Principal{}, false
	}
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if !ok || time.Now().After(e.expires) {
		return Principal{}, false
	}
	return e.p, true
}

func (c *loginCache) put(k [32]byte, user string, p Principal) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[k] = loginEntry{user: user, p: p, expires: time.Now().Add(c.ttl)}
}

// forget drops every entry of user.
func (c *loginCache) forget(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.user == user {
			delete(c.entries, k)
		}
	}
}

// roleCache remembers project roles (0 for none) for ttl. Bounded like loginCache.
type roleCache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[[2]int64]roleEntry
}

type roleEntry struct {
	role    meta.Role
	expires time.Time
}

func newRoleCache(ttl time.Duration, maxEntries int) *roleCache {
	return &roleCache{ttl: ttl, max: maxEntries, entries: map[[2]int64]roleEntry{}}
}

func (c *roleCache) get(projectID, userID int64) (meta.Role, bool) {
	if c.ttl <= 0 {
		return 0, false
	}
	c.mu.Lock()
	e, ok := c.entries[[2]int64{projectID, userID}]
	c.mu.Unlock()
	if !ok || time.Now().After(e.expires) {
		return 0, false
	}
	return e.role, true
}

func (c *roleCache) put(projectID, userID int64, role meta.Role) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[[2]int64{projectID, userID}] = roleEntry{role: role, expires: time.Now().Add(c.ttl)}
}

func (c *roleCache) clear() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}
