package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/berth-registry/berth/src/pkg/audit"
	"github.com/berth-registry/berth/src/pkg/meta/projectcache"
	"github.com/berth-registry/berth/src/pkg/meta/sqlstore"
	"github.com/berth-registry/berth/src/pkg/quota"
	"github.com/berth-registry/berth/src/pkg/secret"
	"github.com/berth-registry/berth/src/server/api"
)

// openDatabase creates the data directory, opens the metadata store, makes sure the admin exists and
// starts the audit writer and the project cache.
func (n *node) openDatabase(ctx context.Context) error {
	if err := os.MkdirAll(n.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	store, err := sqlstore.Open(ctx, n.cfg.DatabaseURLOrDefault())
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	n.store = store
	n.onClose(func() { _ = store.Close() })
	n.health = []api.Component{{Name: "database", Checker: store}}
	n.password, n.generatedPassword, err = bootstrapAdmin(ctx, store, n.cfg.AdminPassword, n.cfg.DataDir, n.log)
	if err != nil {
		return err
	}
	// The audit log is written off the request path, in batches; Close writes what is queued.
	n.auditW = audit.NewWriter(store, audit.Options{Log: n.log.With("component", "audit")})
	n.onClose(n.auditW.Close)
	// Every request resolves its project: keep them in process briefly. Changes made through this
	// node's API apply at once; other nodes' changes show within the TTL.
	n.projects = projectcache.New(store, 2*time.Second)
	return nil
}

// openStorage opens the blob storage and the disk figures beside it.
func (n *node) openStorage(ctx context.Context) error {
	blobs, err := openStorage(ctx, n.cfg)
	if err != nil {
		return fmt.Errorf("open storage: %w", err)
	}
	n.blobs = blobs
	// Disk figures (volumes, watermarks) are of the filesystem holding the blobs; on S3, of the data
	// dir's, where only uploads in progress are spooled.
	loc, _ := n.cfg.Storage() // validated with the configuration
	volumeDir := loc.Dir
	if loc.Bucket != "" {
		volumeDir = n.cfg.DataDir
	}
	n.onS3 = loc.Bucket != ""
	n.disk = quota.StatFS(volumeDir)
	return nil
}

// openSecrets loads (or creates) the secret key and the box sealing credentials with it.
func (n *node) openSecrets(context.Context) error {
	key, err := secret.LoadOrCreateKey(n.cfg.SecretKeyFileOrDefault())
	var weak *secret.InsecureKeyFileError
	if errors.As(err, &weak) {
		n.log.Warn("the secret key file is readable by others; restrict it to mode 0600", "err", err)
	} else if err != nil {
		return fmt.Errorf("secret key: %w", err)
	}
	n.key = key
	n.box, err = secret.NewBox(key)
	return err
}
