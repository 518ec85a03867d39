package main

import (
	"context"
	"path/filepath"
	"time"

	"github.com/berth-registry/berth/src/pkg/config"
	"github.com/berth-registry/berth/src/pkg/storage"
)

// blobStore is what serve needs of a storage backend: the Store, and the janitor's purge of abandoned
// upload sessions.
type blobStore interface {
	storage.Store
	storage.BlobWalker
	PurgeUploads(ctx context.Context, cutoff time.Time) (int, error)
}

// openStorage opens the backend storage-url names: a directory (the default, <data-dir>/storage), or an
// S3 bucket whose writes in progress are spooled in <data-dir>/storage-tmp.
func openStorage(ctx context.Context, cfg config.Config) (blobStore, error) {
	loc, err := cfg.Storage()
	if err != nil {
		return nil, err
	}
	if loc.Bucket == "" {
		return storage.NewFS(loc.Dir)
	}
	return storage.NewS3(ctx, storage.S3Options{
		Bucket: loc.Bucket, Prefix: loc.Prefix,
		Endpoint: cfg.StorageS3Endpoint, Region: cfg.StorageS3Region, PathStyle: cfg.StorageS3PathStyle,
		AccessKey: cfg.StorageS3AccessKey, SecretKey: cfg.StorageS3SecretKey,
		TempDir:  filepath.Join(cfg.DataDir, "storage-tmp"),
		PartSize: int64(cfg.StorageS3PartSize),
		Redirect: cfg.StorageRedirect, RedirectExpiry: cfg.StorageRedirectExpiry,
	})
}
