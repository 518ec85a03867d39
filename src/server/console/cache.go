package console

import (
	"net/http"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// cacheRow is what the cache page shows for one proxy-cache project, from the counters Berth keeps
// since this process started (package metrics) and the latest connection test.
type cacheRow struct {
	Project   *meta.Project
	Registry  *meta.Registry
	Referrers map[string]int64 // by cache result: HIT, MISS, STALE, LOCAL, ERROR, OFF
	Upstream  map[string]int64 // requests to the project's registry by outcome: 2xx, 3xx, 4xx, 5xx, error
	Bytes     int64            // blob bytes read from the registry (all projects using it)
	Ping      *pingResult
	Failing   bool // the latest test failed, or upstream requests failed and none succeeded
}

// counters sums a counter vector's values by the label "by", over the children whose label "where"
// equals is.
func counters(vec *prometheus.CounterVec, where, is, by string) map[string]int64 {
	ch := make(chan prometheus.Metric, 64)
	go func() { vec.Collect(ch); close(ch) }()
	out := map[string]int64{}
	for m := range ch {
		var pb dto.Metric
		if m.Write(&pb) != nil {
			continue
		}
		var match bool
		key := ""
		for _, l := range pb.GetLabel() {
			if l.GetName() == where && l.GetValue() == is {
				match = true
			}
			if l.GetName() == by {
				key = l.GetValue()
			}
		}
		if match || where == "" {
			out[key] += int64(pb.GetCounter().GetValue())
		}
	}
	return out
}

// cachePage shows the referrers cache and upstream health of every proxy-cache project (admin).
func (c *Console) cachePage(q *request) error {
	if !q.admin() {
		return errcode.ErrAPIUnauth.WithMessage("log in as the admin to see the cache")
	}
	ctx := q.r.Context()
	all, _, err := c.d.Projects.ListProjects(ctx, "", 0, 0)
	if err != nil {
		return errcode.ErrInternal.Wrap(err, "listing projects")
	}
	regs, _, err := c.registriesByID(ctx)
	if err != nil {
		return err
	}
	m := c.d.Metrics
	rows := []cacheRow{}
	for _, p := range all {
		if !p.IsProxy() {
			continue
		}
		id := strconv.FormatInt(p.RegistryID, 10)
		row := cacheRow{Project: p, Registry: regs[p.RegistryID],
			Referrers: counters(m.ReferrersRequests, "project", p.Name, "cache"),
			Upstream:  counters(m.UpstreamRequests, "registry", id, "outcome"),
			Bytes:     counters(m.UpstreamBytesFetched, "registry", id, "registry")[id]}
		if v, ok := c.pings.Load(p.RegistryID); ok {
			pr := v.(pingResult)
			row.Ping = &pr
		}
		failed := row.Upstream["error"] + row.Upstream["5xx"]
		row.Failing = (row.Ping != nil && row.Ping.Error != "") || (failed > 0 && row.Upstream["2xx"] == 0)
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Project.Name < rows[j].Project.Name })
	c.render(q, http.StatusOK, "cache", map[string]any{"Title": "Cache", "Rows": rows,
		"Results":  []string{"HIT", "MISS", "STALE", "LOCAL", "ERROR", "OFF"},
		"Outcomes": []string{"2xx", "3xx", "4xx", "5xx", "error"}})
	return nil
}
