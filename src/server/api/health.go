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
func (a *API) getPing(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("Pong"))
}

// getHealth checks every component concurrently and answers 200 in Harbor's shape; the overall status is
// "unhealthy" when any component is, and an unhealthy component carries its error text.
func (a *API) getHealth(w http.ResponseWriter, r *http.Request) {
	out := overallHealth{Status: statusHealthy, Components: make([]componentHealth, 1+len(a.health))}
	out.Components[0] = componentHealth{Name: "core", Status: statusHealthy}
	var wg sync.WaitGroup
	for i, c := range a.health {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
			defer cancel()
			res := componentHealth{Name: c.Name, Status: statusHealthy}
			if err := c.Checker.Ping(ctx); err != nil {
				res.Status, res.Error = statusUnhealthy, err.Error()
			}
			out.Components[i+1] = res
		})
	}
	wg.Wait()
	for _, c := range out.Components {
		if c.Status != statusHealthy {
			out.Status = statusUnhealthy
			a.log.WarnContext(r.Context(), "health check failed", "component", c.Name, "err", c.Error)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
