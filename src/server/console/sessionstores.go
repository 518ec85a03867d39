package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/cache"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// cacheSessions keeps sessions in a cache.Cache shared by every node (Redis), one entry per session
// whose TTL is the session's remaining lifetime, so Redis drops it at its expiry.
type cacheSessions struct {
	c cache.Cache
}

var _ SessionStore = cacheSessions{}

// NewCacheSessions returns a SessionStore in c (use the Redis cache: the memory one may evict). Keys
// are "console-session:<hash of the session ID>" under c's own prefix.
func NewCacheSessions(c cache.Cache) SessionStore { return cacheSessions{c: c} }

func cacheSessionKey(key string) string { return "console-session:" + key }

// PutSession stores s for its remaining lifetime. A key is a hash of 256 random bits: it never exists
// already, so no conflict check is made.
func (cs cacheSessions) PutSession(ctx context.Context, s *meta.Session, now time.Time) error {
	ttl := s.Expires.Sub(now)
	if ttl <= 0 {
		return errors.New("console: session already expired")
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := cs.c.Set(ctx, cacheSessionKey(s.Key), b, ttl); err != nil {
		return fmt.Errorf("console: store session: %w", err)
	}
	return nil
}

func (cs cacheSessions) GetSession(ctx context.Context, key string, now time.Time) (*meta.Session, error) {
	b, err := cs.c.Get(ctx, cacheSessionKey(key))
	if errors.Is(err, cache.ErrMiss) {
		return nil, meta.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("console: read session: %w", err)
	}
	var s meta.Session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("console: decode session: %w", err)
	}
	if s.Key != key || !now.Before(s.Expires) {
		return nil, meta.ErrNotFound
	}
	return &s, nil
}

func (cs cacheSessions) DeleteSession(ctx context.Context, key string) error {
	return cs.c.Delete(ctx, cacheSessionKey(key))
}

// maxMemorySessions bounds NewMemorySessions; when full, expired sessions go, then the oldest.
const maxMemorySessions = 10000

// memorySessions keeps sessions in this process: lost on restart, unseen by other nodes.
type memorySessions struct {
	mu  sync.Mutex
	all map[string]meta.Session
}

var _ SessionStore = (*memorySessions)(nil)

// NewMemorySessions returns a SessionStore in this process's memory, bounded to 10,000 sessions.
func NewMemorySessions() SessionStore { return &memorySessions{all: map[string]meta.Session{}} }

func (m *memorySessions) PutSession(_ context.Context, s *meta.Session, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.all[s.Key]; ok {
		return meta.ErrConflict
	}
	if len(m.all) >= maxMemorySessions {
		m.evict(now)
	}
	m.all[s.Key] = *s
	return nil
}

// evict drops expired sessions, then the one closest to expiry if none was. Called with mu held.
func (m *memorySessions) evict(now time.Time) {
	oldest := ""
	for k, s := range m.all {
		if !now.Before(s.Expires) {
			delete(m.all, k)
		} else if oldest == "" || s.Expires.Before(m.all[oldest].Expires) {
			oldest = k
		}
	}
	if len(m.all) >= maxMemorySessions && oldest != "" {
		delete(m.all, oldest)
	}
}

func (m *memorySessions) GetSession(_ context.Context, key string, now time.Time) (*meta.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.all[key]
	if !ok || !now.Before(s.Expires) {
		return nil, meta.ErrNotFound
	}
	return &s, nil
}

func (m *memorySessions) DeleteSession(_ context.Context, key string) error {
	m.mu.Lock()
	delete(m.all, key)
	m.mu.Unlock()
	return nil
}
