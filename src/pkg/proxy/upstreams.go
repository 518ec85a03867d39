package proxy

import (
	"context"
	"fmt"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/upstream"
)

// Clients serves the upstream client pool (upstream.Clients) as Upstreams.
type Clients struct {
	Pool *upstream.Clients
}

var _ Upstreams = Clients{}

// NewClients returns the Upstreams of a new client pool over registries.
func NewClients(registries meta.RegistryStore, secrets upstream.Opener, opts upstream.Options) Clients {
	return Clients{Pool: upstream.NewClients(registries, secrets, opts)}
}

// Upstream implements Upstreams: the pool's client of the project's registry.
func (c Clients) Upstream(ctx context.Context, project *meta.Project) (Upstream, error) {
	if !project.IsProxy() {
		return nil, fmt.Errorf("project %s is not a proxy-cache project", project.Name)
	}
	cl, err := c.Pool.Client(ctx, project.RegistryID)
	if err != nil {
		return nil, err // not a typed-nil *upstream.Client inside the interface
	}
	return cl, nil
}
