// Package retention runs Harbor-style tag retention policies: per project, rules that each select
// repositories and artifacts (doublestar patterns) and retain some of them by a template (the latest K
// pushed, those pulled within N days, ...). In every repository a rule's scope covers, what no rule
// retains is removed, with its cascades (package lifecycle). Policies are stored as Harbor's JSON
// document; executions and their per-repository tasks are stored in the metadata database.
package retention

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/robfig/cron/v3"
)

// Rule templates (Harbor's names). Each retains artifacts; what no rule retains is removed.
const (
	TemplateAlways             = "always"             // every selected artifact
	TemplateLatestPushedK      = "latestPushedK"      // the K most recently pushed
	TemplateLatestPulledN      = "latestPulledN"      // the N most recently pulled
	TemplateNDaysSinceLastPush = "nDaysSinceLastPush" // those pushed within the last N days
	TemplateNDaysSinceLastPull = "nDaysSinceLastPull" // those pulled within the last N days
)

// MaxRules is the most rules a policy holds (Harbor's limit).
const MaxRules = 15

// Policy is Harbor's RetentionPolicy.
type Policy struct {
	ID        int64    `json:"id,omitempty"`
	Algorithm string   `json:"algorithm,omitempty"`
	Rules     []*Rule  `json:"rules"`
	Trigger   *Trigger `json:"trigger,omitempty"`
	Scope     *Scope   `json:"scope,omitempty"`
}

// Rule is Harbor's RetentionRule.
type Rule struct {
	ID             int64                  `json:"id,omitempty"`
	Priority       int64                  `json:"priority,omitempty"`
	Disabled       bool                   `json:"disabled,omitempty"`
	Action         string                 `json:"action,omitempty"`
	Template       string                 `json:"template,omitempty"`
	Params         map[string]any         `json:"params,omitempty"`
	TagSelectors   []*Selector            `json:"tag_selectors"`
	ScopeSelectors map[string][]*Selector `json:"scope_selectors,omitempty"`
}

// Selector is Harbor's RetentionSelector: kind "doublestar"; decoration "matches"/"excludes" (tags) or
// "repoMatches"/"repoExcludes" (repositories, named without the project); extras, for tags, the JSON
// {"untagged":true} to select untagged artifacts too.
type Selector struct {
	Kind       string `json:"kind,omitempty"`
	Decoration string `json:"decoration,omitempty"`
	Pattern    string `json:"pattern,omitempty"`
	Extras     string `json:"extras,omitempty"`
}

// Trigger is Harbor's RetentionRuleTrigger; kind "Schedule" with settings {"cron": "<6 fields>"} (an
// empty cron: run only when asked).
type Trigger struct {
	Kind       string         `json:"kind,omitempty"`
	Settings   map[string]any `json:"settings,omitempty"`
	References map[string]any `json:"references,omitempty"`
}

// Scope is Harbor's RetentionPolicyScope: level "project", ref the project ID.
type Scope struct {
	Level string `json:"level,omitempty"`
	Ref   int64  `json:"ref,omitempty"`
}

// cronParser reads Harbor's 6-field cron (seconds first) and descriptors such as @daily.
var cronParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Cron returns the policy's cron expression, "" when it has no schedule.
func (p *Policy) Cron() string {
	if p.Trigger == nil {
		return ""
	}
	c, _ := p.Trigger.Settings["cron"].(string)
	return c
}

// Schedule parses the cron expression (nil, nil when there is none).
func (p *Policy) Schedule() (cron.Schedule, error) {
	c := p.Cron()
	if c == "" {
		return nil, nil
	}
	s, err := cronParser.Parse(c)
	if err != nil {
		return nil, fmt.Errorf("trigger.settings.cron %q: %w", c, err)
	}
	return s, nil
}

// DefaultProxyPolicy is the policy a new proxy-cache project gets (as Harbor does): retain what was
// pulled within the last 7 days, in every repository, untagged artifacts included, checked daily.
func DefaultProxyPolicy(projectID int64) *Policy {
	return &Policy{
		Algorithm: "or",
		Rules: []*Rule{{
			Action: "retain", Template: TemplateNDaysSinceLastPull,
			Params:         map[string]any{TemplateNDaysSinceLastPull: 7},
			TagSelectors:   []*Selector{{Kind: "doublestar", Decoration: "matches", Pattern: "**", Extras: `{"untagged":true}`}},
			ScopeSelectors: map[string][]*Selector{"repository": {{Kind: "doublestar", Decoration: "repoMatches", Pattern: "**"}}},
		}},
		Trigger: &Trigger{Kind: "Schedule", Settings: map[string]any{"cron": "0 0 0 * * *"}},
		Scope:   &Scope{Level: "project", Ref: projectID},
	}
}

// Validate checks p and fills defaults (algorithm "or", action "retain"). Its errors are meant for the
// client.
func (p *Policy) Validate() error {
	if p.Algorithm == "" {
		p.Algorithm = "or"
	}
	if p.Algorithm != "or" {
		return fmt.Errorf("algorithm must be \"or\", not %q", p.Algorithm)
	}
	if p.Scope == nil || p.Scope.Level != "project" || p.Scope.Ref <= 0 {
		return fmt.Errorf("scope must be {\"level\":\"project\",\"ref\":<project id>}")
	}
	if len(p.Rules) > MaxRules {
		return fmt.Errorf("a policy has at most %d rules, not %d", MaxRules, len(p.Rules))
	}
	for i, r := range p.Rules {
		if r == nil {
			return fmt.Errorf("rules[%d] is null", i)
		}
		if err := r.validate(); err != nil {
			return fmt.Errorf("rules[%d]: %w", i, err)
		}
	}
	if p.Trigger != nil && p.Trigger.Kind != "" && p.Trigger.Kind != "Schedule" {
		return fmt.Errorf("trigger.kind must be \"Schedule\", not %q", p.Trigger.Kind)
	}
	_, err := p.Schedule()
	return err
}

func (r *Rule) validate() error {
	if r.Action == "" {
		r.Action = "retain"
	}
	if r.Action != "retain" {
		return fmt.Errorf("action must be \"retain\", not %q", r.Action)
	}
	switch r.Template {
	case TemplateAlways:
	case TemplateLatestPushedK, TemplateLatestPulledN, TemplateNDaysSinceLastPush, TemplateNDaysSinceLastPull:
		if _, err := r.param(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown template %q", r.Template)
	}
	for _, s := range r.TagSelectors {
		if err := s.validate("matches", "excludes"); err != nil {
			return fmt.Errorf("tag_selectors: %w", err)
		}
		if _, err := s.untagged(); err != nil {
			return fmt.Errorf("tag_selectors: %w", err)
		}
	}
	for k, sels := range r.ScopeSelectors {
		if k != "repository" {
			return fmt.Errorf("scope_selectors: unknown key %q (only \"repository\")", k)
		}
		for _, s := range sels {
			if err := s.validate("repoMatches", "repoExcludes"); err != nil {
				return fmt.Errorf("scope_selectors: %w", err)
			}
		}
	}
	return nil
}

// param returns the template's count (K, N or days) from params[template], a non-negative integer given
// as a JSON number or a decimal string (Harbor's console sends either).
func (r *Rule) param() (int, error) {
	v, ok := r.Params[r.Template]
	if !ok {
		return 0, fmt.Errorf("template %s needs params.%s", r.Template, r.Template)
	}
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int:
		f = float64(x)
	case json.Number:
		var err error
		if f, err = x.Float64(); err != nil {
			return 0, fmt.Errorf("params.%s: %w", r.Template, err)
		}
	case string:
		n, err := strconv.Atoi(x)
		if err != nil {
			return 0, fmt.Errorf("params.%s must be an integer, not %q", r.Template, x)
		}
		f = float64(n)
	default:
		return 0, fmt.Errorf("params.%s must be an integer", r.Template)
	}
	if f < 0 || f != math.Trunc(f) || f > 1e6 {
		return 0, fmt.Errorf("params.%s must be an integer from 0 to 1000000, not %v", r.Template, v)
	}
	return int(f), nil
}

func (s *Selector) validate(decorations ...string) error {
	if s == nil {
		return fmt.Errorf("null selector")
	}
	if s.Kind != "doublestar" {
		return fmt.Errorf("kind must be \"doublestar\", not %q", s.Kind)
	}
	if s.Decoration != decorations[0] && s.Decoration != decorations[1] {
		return fmt.Errorf("decoration must be %q or %q, not %q", decorations[0], decorations[1], s.Decoration)
	}
	if !doublestar.ValidatePattern(s.Pattern) {
		return fmt.Errorf("invalid pattern %q", s.Pattern)
	}
	return nil
}

// untagged reads extras {"untagged": bool}.
func (s *Selector) untagged() (bool, error) {
	if s.Extras == "" {
		return false, nil
	}
	var x struct {
		Untagged bool `json:"untagged"`
	}
	if err := json.Unmarshal([]byte(s.Extras), &x); err != nil {
		return false, fmt.Errorf("extras must be JSON like {\"untagged\":true}: %w", err)
	}
	return x.Untagged, nil
}
