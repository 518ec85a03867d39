package retention

import (
	"slices"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/berth-registry/berth/src/pkg/lifecycle"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// Candidate is a top-level artifact of a repository: no subject (referrers go with their subject), and
// tagged or listed by no index (children go with their index).
type Candidate struct {
	Artifact *meta.Artifact
	Tags     []string
	// LastPull is the artifact's true last pull: the latest pull of the artifact or, for an index, of
	// any child it lists (a client pulls an index and then its platform's child by digest); an artifact
	// never pulled counts as pulled when it arrived (its push or fill time), so a new one is not removed
	// as "never pulled".
	LastPull time.Time
}

// Candidates returns the top-level artifacts of r.
func Candidates(r *lifecycle.Repo) []*Candidate {
	var out []*Candidate
	for _, a := range r.Artifacts {
		tags := r.Tags[a.ID]
		if a.Subject != "" || (len(tags) == 0 && r.IsChild(a.Digest)) {
			continue
		}
		last := a.PullTime
		if a.PushTime.After(last) {
			last = a.PushTime
		}
		for _, k := range r.Children(a.Digest) {
			if c := r.Artifact(k); c != nil && c.PullTime.After(last) {
				last = c.PullTime
			}
		}
		out = append(out, &Candidate{Artifact: a, Tags: tags, LastPull: last})
	}
	return out
}

// Decision is what a policy decides for one repository.
type Decision struct {
	InScope bool         // some enabled rule's scope selects the repository; when false nothing is removed
	Retain  []*Candidate // retained by some rule
	Remove  []*Candidate // retained by none
}

// Decide applies the enabled rules to the candidates of repository repo (its name without the project),
// at now. Harbor's "or" algorithm: an artifact is retained when any rule whose scope covers the
// repository retains it; in a covered repository the rest is removed.
func (p *Policy) Decide(repo string, cands []*Candidate, now time.Time) Decision {
	var d Decision
	kept := map[*Candidate]bool{}
	for _, r := range p.Rules {
		if r.Disabled || !r.selectsRepo(repo) {
			continue
		}
		d.InScope = true
		var sel []*Candidate
		for _, c := range cands {
			if r.selectsTags(c.Tags) {
				sel = append(sel, c)
			}
		}
		for _, c := range r.retain(sel, now) {
			kept[c] = true
		}
	}
	if !d.InScope {
		return d
	}
	for _, c := range cands {
		if kept[c] {
			d.Retain = append(d.Retain, c)
		} else {
			d.Remove = append(d.Remove, c)
		}
	}
	return d
}

// retain applies the template to the candidates the rule selects.
func (r *Rule) retain(sel []*Candidate, now time.Time) []*Candidate {
	n, _ := r.param() // validated
	byNewest := func(at func(*Candidate) time.Time) []*Candidate {
		s := slices.Clone(sel)
		slices.SortStableFunc(s, func(a, b *Candidate) int {
			if c := at(b).Compare(at(a)); c != 0 {
				return c
			}
			return strings.Compare(a.Artifact.Digest, b.Artifact.Digest)
		})
		return s[:min(n, len(s))]
	}
	since := func(at func(*Candidate) time.Time) []*Candidate {
		cut := now.Add(-time.Duration(n) * 24 * time.Hour)
		var out []*Candidate
		for _, c := range sel {
			if !at(c).Before(cut) {
				out = append(out, c)
			}
		}
		return out
	}
	pushed := func(c *Candidate) time.Time { return c.Artifact.PushTime }
	pulled := func(c *Candidate) time.Time { return c.LastPull }
	switch r.Template {
	case TemplateAlways:
		return sel
	case TemplateLatestPushedK:
		return byNewest(pushed)
	case TemplateLatestPulledN:
		return byNewest(pulled)
	case TemplateNDaysSinceLastPush:
		return since(pushed)
	case TemplateNDaysSinceLastPull:
		return since(pulled)
	}
	return nil
}

// selectsRepo: every repository selector must select repo (no selector: every repository).
func (r *Rule) selectsRepo(repo string) bool {
	for _, s := range r.ScopeSelectors["repository"] {
		ok, _ := doublestar.Match(s.Pattern, repo)
		if ok == (s.Decoration == "repoExcludes") {
			return false
		}
	}
	return true
}

// selectsTags: every tag selector must select the artifact (no selector: every artifact). A tagged
// artifact is selected by "matches" when one of its tags matches, by "excludes" when none does; an
// untagged one when the selector's extras say {"untagged":true}.
func (r *Rule) selectsTags(tags []string) bool {
	for _, s := range r.TagSelectors {
		if len(tags) == 0 {
			if u, _ := s.untagged(); !u {
				return false
			}
			continue
		}
		matched := slices.ContainsFunc(tags, func(t string) bool { ok, _ := doublestar.Match(s.Pattern, t); return ok })
		if matched == (s.Decoration == "excludes") {
			return false
		}
	}
	return true
}
