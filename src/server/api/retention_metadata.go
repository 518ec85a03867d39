package api

import (
	"net/http"

	"github.com/berth-registry/berth/src/pkg/retention"
)

type ruleParamJSON struct {
	Type     string `json:"type"`
	Unit     string `json:"unit"`
	Required bool   `json:"required"`
}

type ruleTemplateJSON struct {
	RuleTemplate string          `json:"rule_template"`
	DisplayText  string          `json:"display_text"`
	Action       string          `json:"action"`
	Params       []ruleParamJSON `json:"params"`
}

type selectorMetaJSON struct {
	DisplayText string   `json:"display_text"`
	Kind        string   `json:"kind"`
	Decorations []string `json:"decorations"`
}

// retentionMetadataJSON is Harbor's RetentionMetadata: the templates and selectors a policy may use.
var retentionMetadataJSON = struct {
	Templates      []ruleTemplateJSON `json:"templates"`
	ScopeSelectors []selectorMetaJSON `json:"scope_selectors"`
	TagSelectors   []selectorMetaJSON `json:"tag_selectors"`
}{
	Templates: []ruleTemplateJSON{
		{retention.TemplateLatestPushedK, "the most recently pushed # artifacts", "retain", []ruleParamJSON{{"int", "count", true}}},
		{retention.TemplateLatestPulledN, "the most recently pulled # artifacts", "retain", []ruleParamJSON{{"int", "count", true}}},
		{retention.TemplateNDaysSinceLastPush, "pushed within the last # days", "retain", []ruleParamJSON{{"int", "days", true}}},
		{retention.TemplateNDaysSinceLastPull, "pulled within the last # days", "retain", []ruleParamJSON{{"int", "days", true}}},
		{retention.TemplateAlways, "always", "retain", []ruleParamJSON{}},
	},
	ScopeSelectors: []selectorMetaJSON{{"Repositories", "doublestar", []string{"repoMatches", "repoExcludes"}}},
	TagSelectors:   []selectorMetaJSON{{"Tags", "doublestar", []string{"matches", "excludes"}}},
}

func (a *API) retentionMetadata(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	return writeOK(w, retentionMetadataJSON)
}
