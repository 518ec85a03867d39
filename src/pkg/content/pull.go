package content

import "context"

// PullKind says what a manifest read (Manifests.GetManifest) counts as for pull bookkeeping.
type PullKind int

const (
	// Pull is a client's GET: it sets the pull time and counts toward the repository's pull count.
	Pull PullKind = iota
	// Check is a client's HEAD: it sets the pull time (the client is using the artifact) but is not
	// counted as a pull, as in Harbor.
	Check
	// Internal is a read the registry makes for itself (comparing a tag with the upstream's): neither.
	Internal
)

type pullKindKey struct{}

// WithPullKind marks ctx's manifest reads as k.
func WithPullKind(ctx context.Context, k PullKind) context.Context {
	return context.WithValue(ctx, pullKindKey{}, k)
}

// PullKindOf returns the mark of ctx (Pull when none).
func PullKindOf(ctx context.Context) PullKind {
	k, _ := ctx.Value(pullKindKey{}).(PullKind)
	return k
}
