package retention_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/retention"
)

func TestValidate(t *testing.T) {
	base := func() *retention.Policy { return retention.DefaultProxyPolicy(1) }
	for _, tc := range []struct {
		name string
		mut  func(p *retention.Policy)
		ok   bool
	}{
		{"default", func(*retention.Policy) {}, true},
		{"param as a decimal string (Harbor's console)", func(p *retention.Policy) { p.Rules[0].Params = map[string]any{"nDaysSinceLastPull": "7"} }, true},
		{"param as json.Number", func(p *retention.Policy) { p.Rules[0].Params = map[string]any{"nDaysSinceLastPull": json.Number("3")} }, true},
		{"fractional param", func(p *retention.Policy) { p.Rules[0].Params = map[string]any{"nDaysSinceLastPull": 1.5} }, false},
		{"missing param", func(p *retention.Policy) { p.Rules[0].Params = nil }, false},
		{"param of another template", func(p *retention.Policy) { p.Rules[0].Params = map[string]any{"latestPushedK": 1} }, false},
		{"always needs none", func(p *retention.Policy) { p.Rules[0].Template, p.Rules[0].Params = retention.TemplateAlways, nil }, true},
		{"delete action", func(p *retention.Policy) { p.Rules[0].Action = "delete" }, false},
		{"and algorithm", func(p *retention.Policy) { p.Algorithm = "and" }, false},
		{"no scope", func(p *retention.Policy) { p.Scope = nil }, false},
		{"system scope", func(p *retention.Policy) { p.Scope.Level = "system" }, false},
		{"16 rules", func(p *retention.Policy) {
			for range 15 {
				p.Rules = append(p.Rules, p.Rules[0])
			}
		}, false},
		{"other selector kind", func(p *retention.Policy) { p.Rules[0].TagSelectors[0].Kind = "regex" }, false},
		{"unknown scope selector key", func(p *retention.Policy) { p.Rules[0].ScopeSelectors["tag"] = p.Rules[0].ScopeSelectors["repository"] }, false},
		{"five-field cron", func(p *retention.Policy) { p.Trigger.Settings["cron"] = "0 0 * * *" }, false},
		{"descriptor cron", func(p *retention.Policy) { p.Trigger.Settings["cron"] = "@daily" }, true},
		{"no schedule", func(p *retention.Policy) { p.Trigger = nil }, true},
		{"event trigger", func(p *retention.Policy) { p.Trigger.Kind = "Event" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base()
			tc.mut(p)
			err := p.Validate()
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
	p := &retention.Policy{Rules: []*retention.Rule{{Template: retention.TemplateAlways}}, Scope: &retention.Scope{Level: "project", Ref: 1}}
	require.NoError(t, p.Validate())
	require.Equal(t, "or", p.Algorithm, "defaults filled")
	require.Equal(t, "retain", p.Rules[0].Action)
}

// TestSchedule6Fields: Harbor's cron has seconds first.
func TestSchedule6Fields(t *testing.T) {
	p := retention.DefaultProxyPolicy(1)
	p.Trigger.Settings["cron"] = "30 15 2 * * *"
	s, err := p.Schedule()
	require.NoError(t, err)
	from := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	require.Equal(t, time.Date(2026, 6, 2, 2, 15, 30, 0, time.UTC), s.Next(from))
}
