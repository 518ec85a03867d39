package retention_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/retention"
)

// fiveImages: a0..a4 in proxy/app, pushed on days 0..4, some pulled later. With the clock at day 10
// their true last pulls are: a0 day 9, a1 day 1 (never pulled: its push), a2 day 3, a3 day 8, a4 day 4.
func fiveImages() []art {
	pulls := []time.Duration{9 * day, 0, 3 * day, 8 * day, 0}
	var out []art
	for i, n := range names("a", 5) {
		out = append(out, art{repo: "app", name: n, tags: []string{"t" + n[1:]}, pushed: time.Duration(i) * day, pulled: pulls[i]})
	}
	return out
}

func TestTemplates(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				rule *retention.Rule
				kept []string
			}{
				{"always", rule(retention.TemplateAlways, 0), []string{"a0", "a1", "a2", "a3", "a4"}},
				{"latestPushedK=2", rule(retention.TemplateLatestPushedK, 2), []string{"a3", "a4"}},
				{"latestPushedK=0", rule(retention.TemplateLatestPushedK, 0), []string{}},
				{"latestPulledN=2", rule(retention.TemplateLatestPulledN, 2), []string{"a0", "a3"}},
				{"nDaysSinceLastPush=7", rule(retention.TemplateNDaysSinceLastPush, 7), []string{"a3", "a4"}},
				{"nDaysSinceLastPull=3", rule(retention.TemplateNDaysSinceLastPull, 3), []string{"a0", "a3"}},
				{"nDaysSinceLastPull=6 (a never-pulled image counts from its push)", rule(retention.TemplateNDaysSinceLastPull, 6), []string{"a0", "a3", "a4"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := newEnv(t, db.url(t))
					e.put(fiveImages()...)
					e.clock.Set(t0.Add(10 * day))
					id := e.policy(tc.rule)
					ex, _ := e.run(id, false)
					require.Equal(t, meta.RetentionSucceed, ex.Status)
					require.Equal(t, tc.kept, e.held())
				})
			}
		})
	}
}

// TestRulesAreOred: an artifact retained by any rule stays.
func TestRulesAreOred(t *testing.T) {
	e := newEnv(t, databases[0].url(t))
	e.put(fiveImages()...)
	e.clock.Set(t0.Add(10 * day))
	id := e.policy(rule(retention.TemplateLatestPushedK, 1), rule(retention.TemplateLatestPulledN, 1))
	e.run(id, false)
	require.Equal(t, []string{"a0", "a4"}, e.held())
}

func TestSelectors(t *testing.T) {
	old := func(repo, name string, tags ...string) art { return art{repo: repo, name: name, tags: tags} }
	arts := []art{
		old("app", "app-v1", "v1.0"), old("app", "app-dev", "v2-dev"), old("app", "app-none"),
		old("lib/x", "x-v1", "v1.1", "latest"), old("lib/x", "x-dev", "v1-dev"),
		old("tools", "tools-v1", "v1.2"),
	}
	sel := func(kind, decoration, pattern, extras string) *retention.Selector {
		return &retention.Selector{Kind: kind, Decoration: decoration, Pattern: pattern, Extras: extras}
	}
	// Each rule retains what it selects (always); what it does not select in a repository it covers goes.
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			for _, tc := range []struct {
				name  string
				repos []*retention.Selector
				tags  []*retention.Selector
				kept  []string
			}{
				{"repoMatches: other repositories untouched", []*retention.Selector{sel("doublestar", "repoMatches", "lib/**", "")},
					[]*retention.Selector{sel("doublestar", "matches", "nothing", "")},
					[]string{"app-dev", "app-none", "app-v1", "tools-v1"}},
				{"repoExcludes", []*retention.Selector{sel("doublestar", "repoExcludes", "{app,tools}", "")},
					[]*retention.Selector{sel("doublestar", "matches", "nothing", "")},
					[]string{"app-dev", "app-none", "app-v1", "tools-v1"}},
				{"tag matches", nil, []*retention.Selector{sel("doublestar", "matches", "v1.*", "")},
					[]string{"app-v1", "tools-v1", "x-v1"}},
				{"tag excludes", nil, []*retention.Selector{sel("doublestar", "excludes", "*-dev", "")},
					[]string{"app-v1", "tools-v1", "x-v1"}},
				{"untagged included", nil, []*retention.Selector{sel("doublestar", "excludes", "*-dev", `{"untagged":true}`)},
					[]string{"app-none", "app-v1", "tools-v1", "x-v1"}},
				{"a tag of several matches", nil, []*retention.Selector{sel("doublestar", "matches", "latest", "")},
					[]string{"x-v1"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := newEnv(t, db.url(t))
					e.put(arts...)
					r := &retention.Rule{Template: retention.TemplateAlways, TagSelectors: tc.tags}
					if tc.repos != nil {
						r.ScopeSelectors = map[string][]*retention.Selector{"repository": tc.repos}
					}
					e.run(e.policy(r), false)
					require.Equal(t, tc.kept, e.held())
				})
			}
		})
	}
}

// cascadeSet: two indexes sharing a child, an image, and referrers pulled through and pushed here.
// idx2's child c2 was pulled on day 9 (by digest, as a client pulls its platform's image): idx2's true
// last pull. At day 10, "pulled within 5 days" keeps idx2 only.
func cascadeSet() []art {
	return []art{
		{repo: "app", name: "c1"}, {repo: "app", name: "c2", pulled: 9 * day}, {repo: "app", name: "c3"},
		{repo: "app", name: "idx1", tags: []string{"old"}, children: []string{"c1", "c3"}},
		{repo: "app", name: "idx2", tags: []string{"new"}, children: []string{"c2", "c3"}},
		{repo: "app", name: "solo", tags: []string{"s"}},
		{repo: "app", name: "sig1", subject: "idx1"},                                     // pulled through
		{repo: "app", name: "sbom1", subject: "idx1", origin: meta.OriginPushed},         // pushed here
		{repo: "app", name: "sig-of-sbom1", subject: "sbom1", origin: meta.OriginPushed}, // a referrer of a referrer
		{repo: "app", name: "sig2", subject: "idx2", origin: meta.OriginPushed},          // pushed, subject kept
	}
}

func TestCascades(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			e := newEnv(t, db.url(t))
			e.put(cascadeSet()...)
			e.clock.Set(t0.Add(10 * day))
			id := e.policy(rule(retention.TemplateNDaysSinceLastPull, 5))

			ex, log := e.run(id, true)
			require.True(t, ex.DryRun)
			require.Len(t, e.held(), 10, "a dry run removes nothing")
			require.Equal(t, 6, strings.Count(log, "REMOVE "), log)

			ex, log = e.run(id, false)
			require.Equal(t, meta.RetentionSucceed, ex.Status)
			require.Equal(t, []string{"c2", "c3", "idx2", "sig2"}, e.held(), log)
			require.Contains(t, log, `reason="child of a removed index"`)
			require.Contains(t, log, `reason="referrer of a removed subject, pulled through"`)
			require.Equal(t, 2, strings.Count(log, `reason="referrer of a removed subject, pushed here"`), log)
			require.Equal(t, 2, strings.Count(e.log.String(), "removing a referrer pushed here with its subject"), e.log.String())

			// Removal order: referrers before their subject, the index before its children.
			at := func(name string) int {
				for d, n := range e.names {
					if n == name {
						return strings.Index(log, "REMOVE "+d)
					}
				}
				return -1
			}
			require.Less(t, at("sig-of-sbom1"), at("sbom1"))
			require.Less(t, at("sbom1"), at("idx1"))
			require.Less(t, at("idx1"), at("c1"))
		})
	}
}

// TestOrigin: whatever their origin, referrers go with a removed subject and stay with a kept one; only
// those pushed here (or of unknown origin) are logged, since the organisation put them there.
func TestOrigin(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			for _, tc := range []struct {
				origin string
				logged bool
			}{{meta.OriginPulled, false}, {meta.OriginPushed, true}, {"unknown", true}} {
				t.Run(tc.origin, func(t *testing.T) {
					e := newEnv(t, db.url(t))
					origin := tc.origin
					if origin == "unknown" {
						origin = " " // stored as is: neither pulled nor pushed
					}
					e.put(art{repo: "app", name: "gone", tags: []string{"a"}}, art{repo: "app", name: "kept", tags: []string{"b"}, pulled: 9 * day},
						art{repo: "app", name: "ref-gone", subject: "gone", origin: origin},
						art{repo: "app", name: "ref-kept", subject: "kept", origin: origin})
					e.clock.Set(t0.Add(10 * day))
					e.run(e.policy(rule(retention.TemplateNDaysSinceLastPull, 5)), false)
					require.Equal(t, []string{"kept", "ref-kept"}, e.held())
					require.Equal(t, tc.logged, strings.Contains(e.log.String(), "removing a referrer pushed here"))
				})
			}
		})
	}
}

// TestSchedule: two nodes tick on one database; a cron slot runs once, and the next slot runs again.
func TestSchedule(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, db.url(t))
			e.put(fiveImages()...)
			other := retention.New(retention.Options{Store: e.store, Manifests: e.fs, Now: e.clock.Now})
			p := &retention.Policy{Rules: []*retention.Rule{rule(retention.TemplateLatestPushedK, 3)},
				Trigger: &retention.Trigger{Kind: "Schedule", Settings: map[string]any{"cron": "0 0 0 * * *"}},
				Scope:   &retention.Scope{Level: "project", Ref: e.pid}}
			require.NoError(t, p.Validate())
			id := e.policy(p.Rules...)
			b, err := jsonOf(p)
			require.NoError(t, err)
			require.NoError(t, e.store.UpdateRetentionPolicy(ctx, &meta.RetentionPolicy{ID: id, ProjectID: e.pid, Policy: b}))

			e.svc.Tick(ctx) // noon: remembers the time only
			other.Tick(ctx)
			e.clock.Set(t0.Add(11 * time.Hour)) // 23:00: no slot yet
			e.svc.Tick(ctx)
			other.Tick(ctx)
			_, n, err := e.store.ListRetentionExecutions(ctx, id, 0, 0)
			require.NoError(t, err)
			require.Zero(t, n)
			require.Len(t, e.held(), 5)

			e.clock.Set(t0.Add(12*time.Hour + time.Minute)) // 00:01: the midnight slot
			e.svc.Tick(ctx)
			other.Tick(ctx) // the same slot on another node: not run again
			list, n, err := e.store.ListRetentionExecutions(ctx, id, 0, 0)
			require.NoError(t, err)
			require.EqualValues(t, 1, n)
			require.Equal(t, retention.TriggerSchedule, list[0].Trigger)
			require.Equal(t, t0.Add(12*time.Hour), list[0].Slot)
			require.Equal(t, []string{"a2", "a3", "a4"}, e.held())

			e.clock.Set(t0.Add(36*time.Hour + time.Minute)) // the next midnight, on the other node's job
			require.NoError(t, other.ScheduleJob()(ctx))
			_, n, err = e.store.ListRetentionExecutions(ctx, id, 0, 0)
			require.NoError(t, err)
			require.EqualValues(t, 2, n)

			other.Close()
			e.clock.Set(t0.Add(60*time.Hour + time.Minute)) // a closed service's job ticks no more
			require.NoError(t, other.ScheduleJob()(ctx))
			_, n, err = e.store.ListRetentionExecutions(ctx, id, 0, 0)
			require.NoError(t, err)
			require.EqualValues(t, 2, n)
		})
	}
}

// TestOneExecutionAtATime: a policy already running refuses another start.
func TestOneExecutionAtATime(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, databases[0].url(t))
	id := e.policy(rule(retention.TemplateAlways, 0))
	require.NoError(t, e.store.StartRetentionExecution(ctx, &meta.RetentionExecution{PolicyID: id, Trigger: "MANUAL", StartTime: t0}, t0.Add(-time.Hour)))
	_, err := e.svc.Execute(ctx, id, retention.TriggerManual, false, time.Time{})
	require.ErrorIs(t, err, meta.ErrConflict)
	e.clock.Set(t0.Add(retention.StaleAfter + time.Second)) // that node died
	ex, err := e.svc.Execute(ctx, id, retention.TriggerManual, false, time.Time{})
	require.NoError(t, err)
	require.Equal(t, meta.RetentionSucceed, ex.Status)
}
