package api

import (
	"slices"

	"github.com/berth-registry/berth/src/pkg/errcode"
	"github.com/berth-registry/berth/src/pkg/meta"
)

// The rules the REST API applies, exported so that the web console (src/server/console) applies the
// same ones. Each returns a BAD_REQUEST *errcode.Error whose message is fit to show to the user.

// ValidateProjectName checks Harbor's project name rule.
func ValidateProjectName(name string) error {
	if len(name) == 0 || len(name) > maxProjectName || !projectNameRE.MatchString(name) {
		return errcode.ErrBadRequest.WithMessage(
			"project name %q is invalid: use 1 to %d lower-case letters, digits and single '.', '_' or '-' between them",
			name, maxProjectName)
	}
	return nil
}

// NormalizeMetadata validates one project metadata pair and returns the value to store.
func NormalizeMetadata(key, value string) (string, error) { return normalizeMetadata(key, value) }

// ValidateRegistry checks and normalizes a registry's name and settings (not its reachability).
func ValidateRegistry(r *meta.Registry) error { return validateRegistry(r, true) }

// RegistryTypes lists the upstream types Berth can proxy, sorted.
func RegistryTypes() []string {
	out := make([]string, 0, len(registryTypes))
	for t := range registryTypes {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
