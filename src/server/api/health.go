package api

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// healthTimeout bounds each component check.
const healthTimeout = 5 * time.Second

// Harbor's health status values.
const (
	statusHealthy   = "healthy"
	statusUnhealthy = "unhealthy"
)

type componentHealth struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

type overallHealth struct {
	Status     string            `json:"status"`
	Components []componentHealth `json:"components"`
}

// getPing answers "Pong" as Harbor does.
func (a *API) getPing(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("Pong"))
	return nil
}

// componentDown is the error an unhealthy component shows. The endpoint is anonymous, and a check's own
// error names the addresses of the database or Redis: that text goes to the log only.
const componentDown = "the component did not answer its health check; see the server log"

// coreDraining is the error "core" shows while the node drains before shutting down.
const coreDraining = "draining: the node is shutting down"

// getHealth checks every component concurrently and answers in Harbor's shape; the overall status is
// "unhealthy" when any component is, and an unhealthy component carries componentDown (its error is
// logged). The status code is 200, as Harbor's, whatever the components say (every node shares the
// database and Redis: taking nodes out of a load balancer for their outage helps nobody), except while
// the node drains before shutting down: then "core" is unhealthy and the answer is 503, which a load
// balancer's health check reads as "send no new requests here".
func (a *API) getHealth(w http.ResponseWriter, r *http.Request) error {
	out := overallHealth{Status: statusHealthy, Components: make([]componentHealth, 1+len(a.health))}
	out.Components[0] = componentHealth{Name: "core", Status: statusHealthy}
	code := http.StatusOK
	if a.draining != nil && a.draining() {
		out.Components[0] = componentHealth{Name: "core", Status: statusUnhealthy, Error: coreDraining}
		code = http.StatusServiceUnavailable
		w.Header().Set("Connection", "close") // keep-alive connections move to other nodes too
	}
	var wg sync.WaitGroup
	for i, c := range a.health {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
			defer cancel()
			res := componentHealth{Name: c.Name, Status: statusHealthy}
			if err := c.Checker.Ping(ctx); err != nil {
				res.Status, res.Error = statusUnhealthy, componentDown
				a.log.WarnContext(r.Context(), "health check failed", "component", c.Name, "err", err)
			}
			out.Components[i+1] = res
		})
	}
	wg.Wait()
	for _, c := range out.Components {
		if c.Status != statusHealthy {
			out.Status = statusUnhealthy
		}
	}
	writeJSON(w, code, out)
	return nil
}
