package admin

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"slices"
	"strings"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// registryTypes are the upstream types Berth can proxy.
var registryTypes = map[string]bool{"docker-registry": true, "docker-hub": true, "harbor": true, "github-ghcr": true}

const (
	maxRegistryName = 64 // Harbor's limit
	// CredentialBasic is the only credential type Berth supports, and the default.
	CredentialBasic = "basic"
)

// RegistryTypes lists the upstream types Berth can proxy, sorted.
func RegistryTypes() []string {
	out := make([]string, 0, len(registryTypes))
	for t := range registryTypes {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// ValidateRegistry checks and normalizes r's settings (not its reachability): the name (trimmed) only
// when withName, the type, the URL (without trailing slashes), the credential type (default basic) and
// the CA certificate.
func ValidateRegistry(r *meta.Registry, withName bool) error {
	if withName {
		r.Name = strings.TrimSpace(r.Name)
		if r.Name == "" || len(r.Name) > maxRegistryName {
			return errcode.ErrBadRequest.WithMessage("registry name must be 1 to %d characters", maxRegistryName)
		}
	}
	if !registryTypes[r.Type] {
		return errcode.ErrBadRequest.WithMessage("registry type %q is not supported: use docker-registry, docker-hub, harbor or github-ghcr", r.Type)
	}
	u, err := normalizeURL(r.URL)
	if err != nil {
		return err
	}
	r.URL = u
	if r.CredentialType == "" {
		r.CredentialType = CredentialBasic
	}
	if r.CredentialType != CredentialBasic {
		return errcode.ErrBadRequest.WithMessage("credential type %q is not supported: use basic", r.CredentialType)
	}
	return validateCA(r.CACertificate)
}

// normalizeURL accepts an absolute http or https URL without user info, query or fragment and returns
// it without trailing slashes.
func normalizeURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Opaque != "" {
		return "", errcode.ErrBadRequest.WithMessage("registry url %q is invalid: use an absolute http:// or https:// URL", s)
	}
	if u.User != nil {
		return "", errcode.ErrBadRequest.WithMessage("registry url must not contain credentials: use the credential fields")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", errcode.ErrBadRequest.WithMessage("registry url must not have a query or a fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// validateCA accepts "" or one or more PEM certificates and nothing else.
func validateCA(text string) error {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	bad := errcode.ErrBadRequest.WithMessage("ca_certificate must be PEM-encoded X.509 certificates")
	rest, n := []byte(text), 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return bad
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return bad
		}
		n++
	}
	if n == 0 || len(bytes.TrimSpace(rest)) > 0 {
		return bad
	}
	return nil
}
