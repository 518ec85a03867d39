package api

import (
	"maps"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/src/pkg/auth"
	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/server/mirror"
)

// Harbor stores metadata names and values in varchar(255) columns.
const maxMetadataLen = 255

// boolMetadata are the keys whose values are booleans, stored as "true" or "false".
var boolMetadata = map[string]bool{
	meta.MetaPublic: true, meta.MetaProxyReferrerAPI: true, meta.MetaAllowSparseManifests: true,
	"enable_content_trust": true, "enable_content_trust_cosign": true, "prevent_vul": true, "auto_scan": true,
}

// secondsMetadata are the keys whose values are durations in whole seconds, 0..meta.MaxMetadataSeconds.
var secondsMetadata = map[string]bool{meta.MetaProxyReferrerCacheSecond: true, meta.MetaProxyTagFreshnessSecond: true}

// int32Metadata are Harbor's proxy-cache settings, integers that may be -1 (no limit).
var int32Metadata = map[string]bool{"proxy_speed_kb": true, "max_upstream_conn": true}

// normalizeMetadata validates one metadata pair and returns the value to store. Booleans accept what
// strconv.ParseBool does and become "true"/"false"; numbers are stored in canonical decimal. Keys Berth
// does not know are stored as given.
func normalizeMetadata(key, value string) (string, error) {
	if key == "" || len(key) > maxMetadataLen || len(value) > maxMetadataLen {
		return "", errcode.ErrBadRequest.WithMessage("metadata names and values must be at most %d characters, and names not empty", maxMetadataLen)
	}
	switch {
	case boolMetadata[key]:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return "", errcode.ErrBadRequest.WithMessage("metadata %s must be \"true\" or \"false\", got %q", key, value)
		}
		return strconv.FormatBool(b), nil
	case secondsMetadata[key]:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 || n > meta.MaxMetadataSeconds {
			return "", errcode.ErrBadRequest.WithMessage("metadata %s must be a whole number of seconds from 0 to %d (one week), got %q", key, meta.MaxMetadataSeconds, value)
		}
		return strconv.FormatInt(n, 10), nil
	case key == mirror.MetaNamespaces:
		names, err := mirror.ParseNamespaces(value)
		if err != nil {
			return "", errcode.ErrBadRequest.WithMessage("metadata %s: %s", key, err.Error())
		}
		return strings.Join(names, ","), nil
	case int32Metadata[key]:
		n, err := strconv.ParseInt(value, 10, 32)
		if err != nil {
			return "", errcode.ErrBadRequest.WithMessage("metadata %s must be a 32-bit integer, got %q", key, value)
		}
		return strconv.FormatInt(n, 10), nil
	}
	return value, nil
}

// mergeMetadata returns a copy of old with the non-null pairs of changes validated and set.
func mergeMetadata(old map[string]string, changes map[string]*string) (map[string]string, error) {
	out := maps.Clone(old)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range changes {
		if v == nil {
			continue
		}
		nv, err := normalizeMetadata(k, *v)
		if err != nil {
			return nil, err
		}
		out[k] = nv
	}
	return out, nil
}

// metadataReadable returns the project of the path for a logged-in caller who may pull from it. The
// metadata endpoints stay closed to anonymous callers, public project or not, as before users existed.
func (a *API) metadataReadable(r *http.Request) (*meta.Project, error) {
	if _, err := a.requireUser(r); err != nil {
		return nil, err
	}
	p, _, err := a.projectFor(r, auth.Pull)
	return p, err
}

// listMetadata answers all metadata of the project as a JSON object.
func (a *API) listMetadata(w http.ResponseWriter, r *http.Request) error {
	p, err := a.metadataReadable(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nonNil(p.Metadata))
	return nil
}

// getMetadata answers {name: value}, or {} when the project has no such metadata (as Harbor).
func (a *API) getMetadata(w http.ResponseWriter, r *http.Request) error {
	p, err := a.metadataReadable(r)
	if err != nil {
		return err
	}
	out := map[string]string{}
	name := r.PathValue("meta")
	if v, ok := p.Metadata[name]; ok {
		out[name] = v
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// addMetadata sets the pairs of a JSON object body (one or more; Harbor takes exactly one).
func (a *API) addMetadata(w http.ResponseWriter, r *http.Request) error {
	return a.setMetadata(w, r, "")
}

// updateMetadata sets the one pair named in the path; the body is {name: value}.
func (a *API) updateMetadata(w http.ResponseWriter, r *http.Request) error {
	return a.setMetadata(w, r, r.PathValue("meta"))
}

// setMetadata merges the body's pairs into the project, only the one named only when only != "".
func (a *API) setMetadata(w http.ResponseWriter, r *http.Request, only string) error {
	p, _, err := a.projectFor(r, auth.MetadataWrite)
	if err != nil {
		return err
	}
	var body map[string]*string
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	if only != "" {
		v := body[only]
		if v == nil {
			return errcode.ErrBadRequest.WithMessage("the body must set %q", only)
		}
		body = map[string]*string{only: v}
	}
	if len(body) == 0 {
		return errcode.ErrBadRequest.WithMessage("the body must set at least one metadata pair")
	}
	if p.Metadata, err = mergeMetadata(p.Metadata, body); err != nil {
		return err
	}
	return a.saveProject(w, r, p)
}

// deleteMetadata removes one pair; removing an absent one succeeds.
func (a *API) deleteMetadata(w http.ResponseWriter, r *http.Request) error {
	p, _, err := a.projectFor(r, auth.MetadataWrite)
	if err != nil {
		return err
	}
	p.Metadata = maps.Clone(p.Metadata)
	delete(p.Metadata, r.PathValue("meta"))
	return a.saveProject(w, r, p)
}

func (a *API) saveProject(w http.ResponseWriter, r *http.Request, p *meta.Project) error {
	if err := a.projects.UpdateProject(r.Context(), p); err != nil {
		return storeError(err, "project "+p.Name)
	}
	if a.audit != nil {
		if who, err := a.principal(r); err == nil {
			a.record(who, p.ID, p.Name, "project", "update")
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
