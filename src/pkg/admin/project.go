// Package admin holds the rules behind Berth's administration surfaces, the REST API (src/server/api)
// and the web console (src/server/console): validation of projects, project metadata, users and upstream
// registries, and the handling of registry credentials (sealing, opening, where a stored one may be
// sent, and checking an upstream with it). HTTP code decodes a request, calls these, and encodes the
// answer.
//
// Every validation error is a BAD_REQUEST *errcode.Error whose message is fit to show to the user.
package admin

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// projectNameRE is Harbor's project name rule; names are 1 to MaxProjectName characters.
var projectNameRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// MaxProjectName is Harbor's longest project name.
const MaxProjectName = 255

// ValidateProjectName checks Harbor's project name rule.
func ValidateProjectName(name string) error {
	if len(name) == 0 || len(name) > MaxProjectName || !projectNameRE.MatchString(name) {
		return errcode.ErrBadRequest.WithMessage(
			"project name %q is invalid: use 1 to %d lower-case letters, digits and single '.', '_' or '-' between them",
			name, MaxProjectName)
	}
	return nil
}

// MetaNamespaces is the project metadata key listing, comma-separated, the extra namespaces (registry
// hosts) a proxy-cache project answers as a containerd mirror (see src/server/mirror).
const MetaNamespaces = "mirror_namespaces"

// Harbor stores metadata names and values in varchar(255) columns.
const maxMetadataLen = 255

// boolMetadata are the keys whose values are booleans, stored as "true" or "false".
var boolMetadata = map[string]bool{
	meta.MetaPublic: true, meta.MetaProxyReferrerAPI: true, meta.MetaAllowSparseManifests: true,
	"enable_content_trust": true, "enable_content_trust_cosign": true, "prevent_vul": true, "auto_scan": true,
}

// int32Metadata are Harbor's proxy-cache settings, integers that may be -1 (no limit).
var int32Metadata = map[string]bool{"proxy_speed_kb": true, "max_upstream_conn": true}

// NormalizeMetadata validates one metadata pair and returns the value to store. Booleans accept what
// strconv.ParseBool does and become "true"/"false"; numbers are stored in canonical decimal; the
// *_seconds keys follow meta.ParseSeconds. Keys Berth does not know are stored as given.
func NormalizeMetadata(key, value string) (string, error) {
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
	case meta.IsSecondsKey(key):
		n, err := meta.ParseSeconds(key, value)
		if err != nil {
			return "", errcode.ErrBadRequest.WithMessage("%s", err.Error())
		}
		return strconv.FormatInt(n, 10), nil
	case key == MetaNamespaces:
		names, err := ParseNamespaces(value)
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

// MergeMetadata returns a copy of old with the non-null pairs of changes validated (NormalizeMetadata)
// and set; old is not modified.
func MergeMetadata(old map[string]string, changes map[string]*string) (map[string]string, error) {
	out := maps.Clone(old)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range changes {
		if v == nil {
			continue
		}
		nv, err := NormalizeMetadata(k, *v)
		if err != nil {
			return nil, err
		}
		out[k] = nv
	}
	return out, nil
}

// ParseNamespaces splits a mirror_namespaces value: comma-separated hosts, each a DNS name or IP
// address with an optional port, as containerd sends them in ns. It returns them lower-cased, trimmed
// and without duplicates; an entry that is no host is an error.
func ParseNamespaces(v string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(v, ",") {
		h := strings.ToLower(strings.TrimSpace(f))
		if h == "" {
			continue
		}
		if !validHost(h) {
			return nil, fmt.Errorf("%q is not a registry host (host or host:port, no scheme or path)", f)
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out, nil
}

// validHost accepts host[:port] with a DNS name or an IPv4 address, or [IPv6][:port].
func validHost(h string) bool {
	u, err := url.Parse("//" + h)
	if err != nil || u.Host != h || u.User != nil || u.Path != "" || u.Hostname() == "" {
		return false
	}
	name := u.Hostname()
	if strings.HasPrefix(h, "[") {
		return true // url.Parse checked the bracketed address
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '.' && r != '-' && r != '_' {
			return false
		}
	}
	return !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, ".")
}

// ProjectRequest is a request to create or change a project, as Harbor's ProjectReq: nil fields are
// absent, and null metadata values are ignored.
type ProjectRequest struct {
	ProjectName  *string
	Public       *bool // legacy: used when Metadata has no "public"
	Metadata     map[string]*string
	StorageLimit *int64
	RegistryID   *int64
}

// NewProject validates a creation request and returns the project to store: a valid name, the
// metadata normalized (MergeMetadata) with "public" always set, the storage limit (StorageLimit,
// unlimited by default) and the registry ID (0 for none, else positive). It does not check that the
// registry exists.
func NewProject(req ProjectRequest) (*meta.Project, error) {
	name := ""
	if req.ProjectName != nil {
		name = *req.ProjectName
	}
	if err := ValidateProjectName(name); err != nil {
		return nil, err
	}
	md, err := MergeMetadata(nil, req.Metadata)
	if err != nil {
		return nil, err
	}
	if _, ok := md[meta.MetaPublic]; !ok {
		md[meta.MetaPublic] = strconv.FormatBool(req.Public != nil && *req.Public)
	}
	limit, err := StorageLimit(req.StorageLimit, -1)
	if err != nil {
		return nil, err
	}
	var registryID int64
	if req.RegistryID != nil {
		registryID = *req.RegistryID
	}
	if registryID < 0 {
		return nil, errcode.ErrBadRequest.WithMessage("registry_id %d is invalid: it must be greater than 0", registryID)
	}
	return &meta.Project{Name: name, RegistryID: registryID, Metadata: md, StorageLimit: limit}, nil
}

// StorageLimit validates a storage limit in bytes: -1 (unlimited) or positive; absent or 0 (Harbor's
// "default") gives def.
func StorageLimit(v *int64, def int64) (int64, error) {
	switch {
	case v == nil || *v == 0:
		return def, nil
	case *v < -1:
		return 0, errcode.ErrBadRequest.WithMessage("storage_limit %d is invalid: use -1 (unlimited) or a positive number of bytes", *v)
	default:
		return *v, nil
	}
}

// ParseID reads a positive integer ID given in a request; what names it in the BAD_REQUEST error.
func ParseID(what, v string) (int64, error) {
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, errcode.ErrBadRequest.WithMessage("%s must be a positive integer, got %q", what, v)
	}
	return id, nil
}

// QuotaStorage validates the hard limits of a quota update, Harbor's {"hard":{"storage":N}}: storage
// is the only resource, and N is -1 (unlimited) or a positive number of bytes. It returns N.
func QuotaStorage(hard map[string]*int64) (int64, error) {
	for k := range hard {
		if k != "storage" {
			return 0, errcode.ErrBadRequest.WithMessage("hard.%s is not a quota resource: only storage is", k)
		}
	}
	v := hard["storage"]
	if v == nil || *v == 0 || *v < -1 {
		return 0, errcode.ErrBadRequest.WithMessage("hard.storage is required: -1 (unlimited) or a positive number of bytes")
	}
	return *v, nil
}

// MemberRole validates a project member's role_id.
func MemberRole(id int64) (meta.Role, error) {
	if r := meta.Role(id); r.Valid() {
		return r, nil
	}
	return 0, errcode.ErrBadRequest.WithMessage("role_id %d is invalid: use 1 (projectAdmin), 2 (developer), 3 (guest), 4 (maintainer) or 5 (limitedGuest)", id)
}
