package retention

import (
	"context"
	"encoding/json"
	"maps"
	"strconv"

	"github.com/berth-registry/berth/src/pkg/meta"
)

// MetaRetentionID is the project metadata naming its retention policy (set by the server, as Harbor).
const MetaRetentionID = "retention_id"

// CreatePolicy stores a policy document for the project and points the project's retention_id at it.
func CreatePolicy(ctx context.Context, projects meta.ProjectStore, policies meta.RetentionStore, projectID int64, doc string) (int64, error) {
	id, err := policies.CreateRetentionPolicy(ctx, &meta.RetentionPolicy{ProjectID: projectID, Policy: doc})
	if err != nil {
		return 0, err
	}
	return id, SetRetentionID(ctx, projects, projectID, id, 0)
}

// CreateDefaultPolicy gives a new proxy-cache project DefaultProxyPolicy, as Harbor does; every path that
// creates projects (API, console) calls it.
func CreateDefaultPolicy(ctx context.Context, projects meta.ProjectStore, policies meta.RetentionStore, p *meta.Project) (int64, error) {
	b, err := json.Marshal(DefaultProxyPolicy(p.ID))
	if err != nil {
		return 0, err
	}
	return CreatePolicy(ctx, projects, policies, p.ID, string(b))
}

// SetRetentionID sets the project's retention_id to id, or, when id is 0, removes it if it names old.
func SetRetentionID(ctx context.Context, projects meta.ProjectStore, projectID, id, old int64) error {
	p, err := projects.GetProject(ctx, projectID)
	if err != nil {
		return err
	}
	md := maps.Clone(p.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	switch {
	case id > 0:
		md[MetaRetentionID] = strconv.FormatInt(id, 10)
	case md[MetaRetentionID] == strconv.FormatInt(old, 10):
		delete(md, MetaRetentionID)
	default:
		return nil
	}
	p.Metadata = md
	return projects.UpdateProject(ctx, p)
}
