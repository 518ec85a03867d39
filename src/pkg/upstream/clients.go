package upstream

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// Opener decrypts a stored registry secret.
type Opener interface {
	Open(sealed string) (string, error)
}

// Clients is the pool of upstream clients: it builds and keeps one client per registry, rebuilt when the registry row changes
// (its update time moves), so token caches and connection pools are shared by all requests.
type Clients struct {
	registries meta.RegistryStore
	secrets    Opener
	opts       Options
	instrument func(registryID int64, rt http.RoundTripper) http.RoundTripper

	mu      sync.Mutex
	clients map[int64]cachedClient
}

type cachedClient struct {
	updated time.Time
	client  *Client
}

// NewClients returns a Clients over the registry store.
func NewClients(registries meta.RegistryStore, secrets Opener, opts Options) *Clients {
	return &Clients{registries: registries, secrets: secrets, opts: opts, clients: map[int64]cachedClient{}}
}

// Instrument wraps the transport of every client built from now on (metrics). Call before serving.
func (c *Clients) Instrument(wrap func(registryID int64, rt http.RoundTripper) http.RoundTripper) {
	c.instrument = wrap
}

// Client returns the client of registry id.
func (c *Clients) Client(ctx context.Context, id int64) (*Client, error) {
	reg, err := c.registries.GetRegistry(ctx, id)
	if err != nil {
		if errors.Is(err, meta.ErrNotFound) {
			return nil, errcode.ErrUpstreamUnavailable.WithMessage("the project's upstream registry %d does not exist", id)
		}
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.clients[id]; ok && cc.updated.Equal(reg.UpdateTime) {
		return cc.client, nil
	}
	ep, err := EndpointOf(reg, c.secrets)
	if err != nil {
		return nil, err
	}
	opts := c.opts
	if c.instrument != nil {
		opts.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return c.instrument(id, rt) }
	}
	cl, err := NewClient(ep, opts)
	if err != nil {
		return nil, errcode.ErrUpstreamUnavailable.Wrap(err, "build client for registry %s", reg.Name)
	}
	c.clients[id] = cachedClient{updated: reg.UpdateTime, client: cl}
	return cl, nil
}

// EndpointOf turns a stored registry into a client endpoint, decrypting its secret.
func EndpointOf(reg *meta.Registry, secrets Opener) (Endpoint, error) {
	ep := Endpoint{URL: reg.URL, Insecure: reg.Insecure, CACertificate: reg.CACertificate, Type: reg.Type, Username: reg.AccessKey}
	if reg.AccessSecret != "" {
		p, err := secrets.Open(reg.AccessSecret)
		if err != nil {
			return ep, errcode.ErrInternal.Wrap(err, "decrypt the credentials of registry %s", reg.Name)
		}
		ep.Password = p
	}
	return ep, nil
}
