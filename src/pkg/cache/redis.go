package cache

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Cache in Redis, shared by every Berth instance using the same server and prefix.
//
// Keys are <prefix>val:<key> for values and <prefix>lock:<key> for locks, so values and locks never
// collide and several deployments (or tests) can share one server under different prefixes. Each
// operation touches a single key, so Redis Cluster needs no hash tags. A lock is a SET NX PX of a random
// token; its unlock deletes the key in a Lua script only if it still holds that token.
//
// Redis failures (connection refused, timeouts, a failover in progress) come back as errors, never as
// panics; callers treat them as misses. Calls give up when their context does, provided the client has
// ContextTimeoutEnabled (NewRedisClient sets it); otherwise go-redis applies only its own read and write
// timeouts.
type Redis struct {
	client    redis.UniversalClient
	prefix    string
	opTimeout time.Duration // 0: the caller's context alone bounds a call
	owned     bool          // Close closes client
}

// RedisOption configures NewRedis and NewRedisFromURL.
type RedisOption func(*Redis)

// WithOpTimeout bounds every call (each Get, Set, Delete, TryLock and unlock) to d on top of the
// caller's context, so that a Redis outage costs a request at most d per call rather than the whole
// request deadline. d <= 0 means no bound beyond the context.
func WithOpTimeout(d time.Duration) RedisOption {
	return func(r *Redis) { r.opTimeout = d }
}

var _ Cache = (*Redis)(nil)

// unlockScript deletes KEYS[1] only while it holds the caller's token ARGV[1].
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// NewRedis returns a Cache over client with every key prefixed by prefix (for example "berth:cache:").
// The caller keeps ownership of client: Close does not close it. Enable ContextTimeoutEnabled on the
// client so that context deadlines bound every call.
func NewRedis(client redis.UniversalClient, prefix string, opts ...RedisOption) *Redis {
	r := &Redis{client: client, prefix: prefix}
	for _, o := range opts {
		o(r)
	}
	return r
}

// NewRedisFromURL builds a client from rawURL (see NewRedisClient for the accepted forms) and returns a
// Cache over it with keys prefixed by prefix. The Cache owns that client: Close closes it.
func NewRedisFromURL(rawURL, prefix string, opts ...RedisOption) (*Redis, error) {
	client, err := NewRedisClient(rawURL)
	if err != nil {
		return nil, err
	}
	r := NewRedis(client, prefix, opts...)
	r.owned = true
	return r, nil
}

// bound applies the per-call timeout, if any, to ctx.
func (r *Redis) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.opTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, r.opTimeout)
}

// Ping checks that Redis answers, for start-up and readiness checks.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cache: redis ping: %w", err)
	}
	return nil
}

// Close releases the client when this Cache created it (NewRedisFromURL); otherwise it does nothing.
func (r *Redis) Close() error {
	if !r.owned {
		return nil
	}
	return r.client.Close()
}

func (r *Redis) valueKey(key string) string { return r.prefix + "val:" + key }
func (r *Redis) lockKey(key string) string  { return r.prefix + "lock:" + key }

// redisTTL rounds ttl up to Redis's 1 ms resolution (go-redis would otherwise log and do the same).
func redisTTL(ttl time.Duration) time.Duration {
	return max(ttl, time.Millisecond)
}

// Get implements Cache.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cache: redis get: %w", err)
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	b, err := r.client.Get(ctx, r.valueKey(key)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, ErrMiss
	case err != nil:
		return nil, fmt.Errorf("cache: redis get: %w", err)
	case b == nil:
		b = []byte{}
	}
	return b, nil
}

// Set implements Cache.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ctx, "redis set", ttl); err != nil {
		return err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	if err := r.client.Set(ctx, r.valueKey(key), value, redisTTL(ttl)).Err(); err != nil {
		return fmt.Errorf("cache: redis set: %w", err)
	}
	return nil
}

// Delete implements Cache.
func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cache: redis delete: %w", err)
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	if err := r.client.Del(ctx, r.valueKey(key)).Err(); err != nil {
		return fmt.Errorf("cache: redis delete: %w", err)
	}
	return nil
}

// TryLock implements Cache.
func (r *Redis) TryLock(ctx context.Context, key string, ttl time.Duration) (func(context.Context) error, bool, error) {
	if err := checkTTL(ctx, "redis lock", ttl); err != nil {
		return nil, false, err
	}
	lockKey, token := r.lockKey(key), rand.Text()
	setCtx, cancel := r.bound(ctx)
	defer cancel()
	ok, err := r.client.SetNX(setCtx, lockKey, token, redisTTL(ttl)).Result()
	if err != nil {
		return nil, false, fmt.Errorf("cache: redis lock: %w", err)
	}
	if !ok {
		return nil, false, nil
	}
	unlock := func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("cache: redis unlock: %w", err)
		}
		ctx, cancel := r.bound(ctx)
		defer cancel()
		n, err := unlockScript.Run(ctx, r.client, []string{lockKey}, token).Int64()
		if err != nil {
			return fmt.Errorf("cache: redis unlock: %w", err)
		}
		if n == 0 {
			return ErrLockNotHeld
		}
		return nil
	}
	return unlock, true, nil
}
