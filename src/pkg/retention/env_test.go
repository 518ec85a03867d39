package retention_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/clocktest"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/meta/metatest"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore/sqltest"
	"github.com/berth-registry/berth/src/pkg/retention"
	"github.com/berth-registry/berth/src/pkg/storage"
)

const (
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
	mtIndex    = "application/vnd.oci.image.index.v1+json"
	day        = 24 * time.Hour
)

// t0 is when every test starts; the fake clock moves from there.
var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// databases are the metadata databases every test runs on.
var databases = []struct {
	name string
	url  func(testing.TB) string
}{{"sqlite", sqltest.SQLite}, {"postgres", sqltest.Postgres}}

// env is a project "proxy" on a real store and storage, with a retention service on a fake clock.
type env struct {
	t     *testing.T
	store meta.Store
	fs    *storage.FS
	clock *clocktest.Clock
	svc   *retention.Service
	pid   int64
	log   *bytes.Buffer
	names map[string]string // digest -> name given at push, for readable assertions
}

func newEnv(t *testing.T, url string) *env {
	ctx := context.Background()
	store := metatest.Open(t, url)
	fs, err := storage.NewFS(t.TempDir())
	require.NoError(t, err)
	pid, err := store.CreateProject(ctx, &meta.Project{Name: "proxy", StorageLimit: -1})
	require.NoError(t, err)
	e := &env{t: t, store: store, fs: fs, clock: clocktest.New(t0), pid: pid, log: &bytes.Buffer{}, names: map[string]string{}}
	e.svc = retention.New(retention.Options{Store: store, Manifests: fs, Now: e.clock.Now,
		Log: slog.New(slog.NewTextHandler(e.log, nil))})
	return e
}

// art describes an artifact to store.
type art struct {
	repo     string // without the project
	name     string // unique label, also the manifest's content
	tags     []string
	pushed   time.Duration // push time after t0
	pulled   time.Duration // pull time after t0 (0: never)
	origin   string        // "" : pulled
	subject  string        // name of the subject artifact
	children []string      // names of the index's children (makes it an index)
}

// put stores the artifacts in order and returns name -> digest.
func (e *env) put(arts ...art) map[string]string {
	ctx := context.Background()
	byName := map[string]string{}
	for d, n := range e.names {
		byName[n] = d
	}
	for _, a := range arts {
		mt, body := mtManifest, map[string]any{"schemaVersion": 2, "mediaType": mtManifest, "name": a.name}
		if a.children != nil {
			var ms []map[string]any
			for _, c := range a.children {
				ms = append(ms, map[string]any{"mediaType": mtManifest, "digest": byName[c], "size": 1})
			}
			mt, body = mtIndex, map[string]any{"schemaVersion": 2, "mediaType": mtIndex, "manifests": ms}
		}
		b, err := json.Marshal(body)
		require.NoError(e.t, err)
		d := digest.FromBytes(b)
		_, err = e.fs.Put(ctx, d, bytes.NewReader(b))
		require.NoError(e.t, err)
		origin := a.origin
		if origin == "" {
			origin = meta.OriginPulled
		}
		m := &meta.Artifact{Digest: d.String(), MediaType: mt, Size: int64(len(b)), PushTime: t0.Add(a.pushed), Origin: origin}
		if a.subject != "" {
			m.Subject = byName[a.subject]
		}
		require.NoError(e.t, e.store.PutArtifact(ctx, e.pid, "proxy/"+a.repo, m, a.tags...))
		if a.pulled != 0 {
			e.pull(a.repo, d.String(), t0.Add(a.pulled))
		}
		byName[a.name] = d.String()
		e.names[d.String()] = a.name
	}
	return byName
}

func (e *env) pull(repo, d string, at time.Time) {
	require.NoError(e.t, e.store.RecordPulls(context.Background(), []meta.Pull{{Repository: "proxy/" + repo, Digest: d, Time: at, Count: 1}}))
}

// held returns the names of the artifacts left in the project, sorted.
func (e *env) held() []string {
	arts, _, err := e.store.ListProjectArtifacts(context.Background(), e.pid, "")
	require.NoError(e.t, err)
	out := []string{}
	for _, a := range arts {
		out = append(out, e.names[a.Digest])
	}
	sort.Strings(out)
	return out
}

// policy stores a policy of the rules for the project and returns its ID.
func (e *env) policy(rules ...*retention.Rule) int64 {
	p := &retention.Policy{Rules: rules, Scope: &retention.Scope{Level: "project", Ref: e.pid}}
	require.NoError(e.t, p.Validate())
	b, err := json.Marshal(p)
	require.NoError(e.t, err)
	id, err := e.store.CreateRetentionPolicy(context.Background(), &meta.RetentionPolicy{ProjectID: e.pid, Policy: string(b)})
	require.NoError(e.t, err)
	return id
}

// run executes the policy now and returns the execution and the joined task logs.
func (e *env) run(id int64, dryRun bool) (*meta.RetentionExecution, string) {
	ctx := context.Background()
	ex, err := e.svc.Execute(ctx, id, retention.TriggerManual, dryRun, time.Time{})
	require.NoError(e.t, err)
	tasks, _, err := e.store.ListRetentionTasks(ctx, ex.ID, 0, 0)
	require.NoError(e.t, err)
	var logs []string
	for _, t := range tasks {
		logs = append(logs, t.Log)
	}
	return ex, strings.Join(logs, "")
}

// rule builds a rule: template with param n, every repository and tag, untagged included.
func rule(template string, n int) *retention.Rule {
	r := &retention.Rule{Template: template,
		TagSelectors:   []*retention.Selector{{Kind: "doublestar", Decoration: "matches", Pattern: "**", Extras: `{"untagged":true}`}},
		ScopeSelectors: map[string][]*retention.Selector{"repository": {{Kind: "doublestar", Decoration: "repoMatches", Pattern: "**"}}}}
	if template != retention.TemplateAlways {
		r.Params = map[string]any{template: n}
	}
	return r
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func jsonOf(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
