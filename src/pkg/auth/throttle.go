package auth

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ThrottleOptions tune a Throttle. Zero fields take the defaults.
type ThrottleOptions struct {
	// Free is how many failed logins a client address or a user name may have before it is locked
	// (default 5).
	Free int
	// Base is the lock after the first failure past Free; each further failure doubles it (default 1s).
	Base time.Duration
	// Max caps the lock (default 1m).
	Max time.Duration
	// Window is how long failures are remembered: a key without a failure for this long starts from
	// zero again (default 15m).
	Window time.Duration
	// Trusted is how long an address that logged in successfully stays exempt from the locks of user
	// names (default 24h), so that an attacker guessing the admin's password from elsewhere does not
	// lock out the admin's own machines and CI runners. Its own address lock still applies.
	Trusted time.Duration
	// MaxEntries bounds each of the three maps (addresses, users, trusted addresses) (default 10000).
	MaxEntries int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *ThrottleOptions) setDefaults() {
	if o.Free <= 0 {
		o.Free = 5
	}
	if o.Base <= 0 {
		o.Base = time.Second
	}
	if o.Max <= 0 {
		o.Max = time.Minute
	}
	if o.Window <= 0 {
		o.Window = 15 * time.Minute
	}
	if o.Trusted <= 0 {
		o.Trusted = 24 * time.Hour
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Throttle slows password guessing: it counts failed logins per client address and per user name and,
// past ThrottleOptions.Free failures, locks the key for an exponentially growing time (Base, 2*Base,
// ... up to Max). While either key of a request is locked, the request is refused without its password
// being checked, so a guesser gets at most one answer per lock period. A successful login clears both
// keys and makes its address trusted: a trusted address is not held by user-name locks. A login that
// never failed is never delayed. Memory is bounded: each map keeps at most MaxEntries keys, least
// recently used first out. Safe for concurrent use.
type Throttle struct {
	opts ThrottleOptions

	mu      sync.Mutex
	addrs   *lru[failures]
	users   *lru[failures]
	trusted *lru[time.Time] // address -> last successful login
}

// failures is the record of one key.
type failures struct {
	n      int       // failed logins within Window
	last   time.Time // latest failure
	locked time.Time // refused until then
}

// NewThrottle returns a Throttle.
func NewThrottle(opts ThrottleOptions) *Throttle {
	opts.setDefaults()
	return &Throttle{opts: opts, addrs: newLRU[failures](opts.MaxEntries), users: newLRU[failures](opts.MaxEntries),
		trusted: newLRU[time.Time](opts.MaxEntries)}
}

// maxUserKey bounds the user names kept: longer ones share the key of their prefix.
const maxUserKey = 128

// clientKey names a client by its address: the IP of remoteAddr ("host:port"), an IPv6 address by its
// /64 network, which one client usually holds whole.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func userKey(user string) string {
	if len(user) > maxUserKey {
		return user[:maxUserKey]
	}
	return user
}

// Wait returns how long a login by user from remoteAddr must still wait, 0 when it may be checked now.
func (t *Throttle) Wait(remoteAddr, user string) time.Duration {
	now := t.opts.Now()
	addr := clientKey(remoteAddr)
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	if f, ok := t.addrs.get(addr); ok {
		wait = max(wait, f.locked.Sub(now))
	}
	if f, ok := t.users.get(userKey(user)); ok && !t.isTrusted(addr, now) {
		wait = max(wait, f.locked.Sub(now))
	}
	return max(wait, 0)
}

func (t *Throttle) isTrusted(addr string, now time.Time) bool {
	at, ok := t.trusted.get(addr)
	return ok && now.Sub(at) < t.opts.Trusted
}

// Failed records a failed login and returns the failure counts of the address and the user and the lock
// that now applies to further attempts from the address.
func (t *Throttle) Failed(remoteAddr, user string) (addrFailures, userFailures int, lock time.Duration) {
	now := t.opts.Now()
	addr := clientKey(remoteAddr)
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.fail(t.addrs, addr, now)
	u := t.fail(t.users, userKey(user), now)
	return a.n, u.n, max(a.locked.Sub(now), 0)
}

func (t *Throttle) fail(m *lru[failures], key string, now time.Time) failures {
	f, _ := m.get(key)
	if now.Sub(f.last) >= t.opts.Window {
		f = failures{}
	}
	f.n++
	f.last = now
	if past := f.n - t.opts.Free; past >= 0 {
		lock := t.opts.Max
		if past < 32 && t.opts.Base<<past < t.opts.Max && t.opts.Base<<past > 0 {
			lock = t.opts.Base << past
		}
		f.locked = now.Add(lock)
	}
	m.put(key, f)
	return f
}

// Succeeded clears the failures of the address and the user and trusts the address.
func (t *Throttle) Succeeded(remoteAddr, user string) {
	now := t.opts.Now()
	addr := clientKey(remoteAddr)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addrs.remove(addr)
	t.users.remove(userKey(user))
	// Refreshing the trust at most once a minute keeps the common case, a client that logs in on every
	// request, to one map lookup.
	if at, ok := t.trusted.get(addr); !ok || now.Sub(at) > time.Minute {
		t.trusted.put(addr, now)
	}
}

// retryAfter renders a wait for a message, rounded up to whole seconds.
func retryAfter(d time.Duration) string {
	return fmt.Sprintf("%ds", int64((d+time.Second-1)/time.Second))
}
