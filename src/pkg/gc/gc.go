// Package gc is Berth's online garbage collector: it removes blobs no manifest references, and with
// delete_untagged first the untagged artifacts nothing tagged keeps, while pushes, uploads, mounts and
// pull-through fills go on. The protocol (mark, grace period, pins, sweep with a recheck under a
// per-digest lock, tombstones) is described step by step in docs/gc.md; the database half of each step
// is in meta/sqlstore (gc.go).
package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/src/pkg/content"
	"github.com/berth-registry/berth/src/pkg/meta"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// DefaultGracePeriod is how old unreferenced content must be before it is collected (config
// gc-grace-period): longer than any client takes between uploading a layer and pushing the manifest
// that names it, and than any clock skew between nodes.
const DefaultGracePeriod = time.Hour

// DefaultPinLease is how long a pin protects a blob. A pin is taken just before the step that makes a
// blob referenced (a commit, a link, a manifest record), which takes seconds; the lease only has to
// outlast that step, and a crashed writer's pins lapse by themselves.
const DefaultPinLease = time.Hour

// Blobs is what the collector needs of the blob store.
type Blobs interface {
	storage.BlobReader
	storage.BlobDeleter
	storage.BlobWalker
}

// Params are a run's parameters, with Harbor's names.
type Params struct {
	DeleteUntagged bool `json:"delete_untagged"`
	DryRun         bool `json:"dry_run"`
	// Workers is how many digests are swept at once (Harbor: 1 to 5; 0: 1).
	Workers int `json:"workers"`
}

// String returns the JSON form stored with an execution.
func (p Params) String() string {
	b, _ := json.Marshal(p) // three plain fields: cannot fail
	return string(b)
}

// ParseParams reads the JSON form; an empty string is the zero Params.
func ParseParams(s string) (Params, error) {
	var p Params
	if s == "" {
		return p, nil
	}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return p, fmt.Errorf("gc parameters: %w", err)
	}
	return p, p.Validate()
}

// MaxWorkers bounds Params.Workers (Harbor's limit).
const MaxWorkers = 5

// Validate checks the worker count.
func (p Params) Validate() error {
	if p.Workers < 0 || p.Workers > MaxWorkers {
		return fmt.Errorf("workers must be between 1 and %d", MaxWorkers)
	}
	return nil
}

// Result counts what a run removed (or, in a dry run, would have removed).
type Result struct {
	ArtifactsDeleted int64
	LinksDeleted     int64
	BlobsDeleted     int64
	BytesFreed       int64
	// Pinned counts digests left alone because a writer pinned them during the run.
	Pinned int64
}

// Pins implements content.BlobPinner on the database half of the protocol. Condemned bytes found while
// pinning are deleted from blobs.
type Pins struct {
	store meta.BlobPinStore
	blobs storage.BlobDeleter
	lease time.Duration
	now   func() time.Time
}

var _ content.BlobPinner = (*Pins)(nil)

// NewPins returns a pinner whose pins last lease (0: DefaultPinLease); now is the clock (nil: time.Now).
func NewPins(store meta.BlobPinStore, blobs storage.BlobDeleter, lease time.Duration, now func() time.Time) *Pins {
	if lease <= 0 {
		lease = DefaultPinLease
	}
	if now == nil {
		now = time.Now
	}
	return &Pins{store: store, blobs: blobs, lease: lease, now: now}
}

// PinBlobs pins the digests until now + lease; unpin ends the pins at the time it is called. The
// expiry carries a random sub-millisecond offset, so that unpin, which only touches a pin still at this
// expiry, practically never ends another writer's pin of the same digest.
func (p *Pins) PinBlobs(ctx context.Context, digests ...digest.Digest) (func(), error) {
	ds := make([]string, len(digests))
	for i, d := range digests {
		ds[i] = d.String()
	}
	until := p.now().Add(p.lease + time.Duration(rand.N(1000))*time.Microsecond) //nolint:gosec // G404: jitter that spreads pin expiries, not a secret
	if err := p.store.PinBlobs(ctx, ds, until, func(d string) error { return removeBytes(ctx, p.blobs, d) }); err != nil {
		return nil, err
	}
	return func() {
		// Best effort: a pin left in place only delays collection until its lease ends.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = p.store.UnpinBlobs(uctx, ds, until, p.now())
	}, nil
}

// removeBytes deletes a blob's bytes; already gone counts as done.
func removeBytes(ctx context.Context, blobs storage.BlobDeleter, d string) error {
	err := blobs.Delete(context.WithoutCancel(ctx), digest.Digest(d))
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

// manifestRefs returns the digests a manifest names: config, layers (foreign ones too) and an index's
// manifests. The subject is not a reference: a referrer does not keep its subject.
func manifestRefs(body []byte) ([]string, error) {
	type desc struct {
		Digest string `json:"digest"`
	}
	var doc struct {
		Config    *desc  `json:"config"`
		Layers    []desc `json:"layers"`
		Manifests []desc `json:"manifests"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(doc.Layers)+len(doc.Manifests)+1)
	if doc.Config != nil && doc.Config.Digest != "" {
		out = append(out, doc.Config.Digest)
	}
	for _, l := range doc.Layers {
		out = append(out, l.Digest)
	}
	for _, m := range doc.Manifests {
		out = append(out, m.Digest)
	}
	return out, nil
}

// readManifest reads a stored manifest, at most content.MaxManifestSize bytes.
func readManifest(ctx context.Context, blobs storage.BlobReader, d string) ([]byte, error) {
	b, err := blobs.Open(ctx, digest.Digest(d))
	if err != nil {
		return nil, err
	}
	defer func() { _ = b.Close() }()
	body, err := io.ReadAll(io.LimitReader(b, content.MaxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > content.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s is larger than %d bytes", d, content.MaxManifestSize)
	}
	return body, nil
}
