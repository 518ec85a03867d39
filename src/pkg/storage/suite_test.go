package storage

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/berth-registry/berth/src/pkg/storage/s3test"
)

// The suite below runs every promise of Store against each backend: the filesystem and a real S3
// server (versitygw, started per test). Backend-specific tests live in fs_test.go and s3_test.go.

// backend is a Store under test with views of what it holds.
type backend struct {
	Store
	// blobs lists the visible blob names (alg/hex), sorted.
	blobs func(t *testing.T) []string
	// leftovers lists everything else held: temporary files, upload sessions, multipart uploads.
	leftovers func(t *testing.T) []string
	// another opens a second store on the same data, as another node would (nil: not shared).
	another func(t *testing.T) Store
	purge   func(ctx context.Context, cutoff time.Time) (int, error)
}

const testPartSize = minPartSize

func fsBackend(t *testing.T) *backend {
	s := newTestFS(t)
	list := func(t *testing.T, dir string) []string {
		var out []string
		for _, f := range files(t, filepath.Join(s.Root(), dir)) {
			out = append(out, dir+"/"+f)
		}
		return out
	}
	return &backend{
		Store: s,
		blobs: func(t *testing.T) []string {
			var out []string
			for _, f := range files(t, filepath.Join(s.Root(), "blobs")) {
				parts := strings.Split(f, string(filepath.Separator))
				out = append(out, parts[0]+"/"+parts[2])
			}
			sort.Strings(out)
			return out
		},
		leftovers: func(t *testing.T) []string { return append(list(t, "tmp"), list(t, "uploads")...) },
		purge:     s.PurgeUploads,
	}
}

// s3Env is a bucket and prefix on a versitygw of its own.
type s3Env struct {
	srv    *s3test.Server
	bucket string
	prefix string
}

func newS3Env(t *testing.T) *s3Env {
	srv := s3test.Start(t)
	return &s3Env{srv: srv, bucket: srv.Bucket(t), prefix: "some/prefix"}
}

func (e *s3Env) open(t *testing.T, mod func(*S3Options)) *S3 {
	t.Helper()
	opts := S3Options{
		Bucket: e.bucket, Prefix: e.prefix, Endpoint: e.srv.Endpoint, Region: e.srv.Region, PathStyle: true,
		AccessKey: e.srv.AccessKey, SecretKey: e.srv.SecretKey, TempDir: t.TempDir(), PartSize: testPartSize,
	}
	if mod != nil {
		mod(&opts)
	}
	s, err := NewS3(context.Background(), opts)
	require.NoError(t, err)
	return s
}

// keys lists the bucket's object keys under the store's prefix, without it.
func (e *s3Env) keys(t *testing.T) []string {
	t.Helper()
	var out []string
	p := s3.NewListObjectsV2Paginator(e.srv.Client, &s3.ListObjectsV2Input{Bucket: aws.String(e.bucket), Prefix: aws.String(e.prefix + "/")})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		require.NoError(t, err)
		for _, o := range page.Contents {
			out = append(out, strings.TrimPrefix(aws.ToString(o.Key), e.prefix+"/"))
		}
	}
	sort.Strings(out)
	return out
}

// multipartUploads lists the bucket's unfinished multipart uploads (their keys).
func (e *s3Env) multipartUploads(t *testing.T) []string {
	t.Helper()
	out, err := e.srv.Client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(e.bucket)})
	require.NoError(t, err)
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, "multipart:"+aws.ToString(u.Key))
	}
	return keys
}

func s3Backend(t *testing.T) *backend {
	e := newS3Env(t)
	s := e.open(t, nil)
	return &backend{
		Store: s,
		blobs: func(t *testing.T) []string {
			var out []string
			for _, k := range e.keys(t) {
				if parts := strings.Split(k, "/"); parts[0] == "blobs" {
					out = append(out, parts[1]+"/"+parts[3])
				}
			}
			return out
		},
		leftovers: func(t *testing.T) []string {
			var out []string
			for _, k := range e.keys(t) {
				if !strings.HasPrefix(k, "blobs/") {
					out = append(out, k)
				}
			}
			out = append(out, files(t, s.tmp)...)
			return append(out, e.multipartUploads(t)...)
		},
		another: func(t *testing.T) Store { return e.open(t, nil) },
		purge:   s.PurgeUploads,
	}
}

// eachBackend runs fn against the filesystem and S3 backends.
func eachBackend(t *testing.T, fn func(t *testing.T, b *backend)) {
	for _, c := range []struct {
		name string
		open func(t *testing.T) *backend
	}{{"fs", fsBackend}, {"s3", s3Backend}} {
		t.Run(c.name, func(t *testing.T) { fn(t, c.open(t)) })
	}
}

func blobName(d digest.Digest) string { return string(d.Algorithm()) + "/" + d.Encoded() }

func readAll(t *testing.T, s Store, d digest.Digest) []byte {
	t.Helper()
	b, err := s.Open(context.Background(), d)
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	got, err := io.ReadAll(b)
	require.NoError(t, err)
	require.Equal(t, int64(len(got)), b.Size())
	return got
}

func TestSuitePutOpenRange(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		for _, size := range []int{0, 1000, 2*testPartSize + 12345} {
			data := content(size)
			for _, d := range []digest.Digest{digest.FromBytes(data), sha512Of(data)} {
				n, err := b.Put(ctx, d, bytes.NewReader(data))
				require.NoError(t, err)
				require.Equal(t, int64(size), n)
				got, err := b.Stat(ctx, d)
				require.NoError(t, err)
				require.Equal(t, int64(size), got)
				require.True(t, bytes.Equal(data, readAll(t, b, d)), "size %d %s", size, d.Algorithm())
				if size == 0 {
					continue
				}
				blob, err := b.Open(ctx, d)
				require.NoError(t, err)
				for _, off := range []int64{int64(size) / 3, 1, int64(size) - 1, 0} {
					_, err := blob.Seek(off, io.SeekStart)
					require.NoError(t, err)
					p := make([]byte, min(100, int64(size)-off))
					_, err = io.ReadFull(blob, p)
					require.NoError(t, err)
					require.Equal(t, data[off:off+int64(len(p))], p, "range at %d", off)
				}
				require.NoError(t, blob.Close())
			}
		}
		require.Len(t, b.blobs(t), 6)
		require.Empty(t, b.leftovers(t))
	})
}

func TestSuiteFailedPutsLeaveNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		data := content(testPartSize + 100)
		_, err := b.Put(ctx, digest.FromBytes([]byte("other")), bytes.NewReader(data))
		require.ErrorIs(t, err, ErrDigestMismatch)
		_, err = b.Put(ctx, digest.FromBytes(data), &failingReader{data: data[:len(data)-10], err: errBoom})
		require.Error(t, err)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err = b.Put(cctx, digest.FromBytes(data), bytes.NewReader(data))
		require.ErrorIs(t, err, context.Canceled)
		_, err = b.Stat(ctx, digest.FromBytes(data))
		require.ErrorIs(t, err, ErrNotFound)
		require.Empty(t, b.blobs(t))
		require.Empty(t, b.leftovers(t))
	})
}

func TestSuiteConcurrentPutsOfOneDigest(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		data := content(testPartSize + 4096)
		d := digest.FromBytes(data)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				if i%2 == 0 { // half of them through Put
					_, errs[i] = b.Put(context.Background(), d, bytes.NewReader(data))
					return
				}
				w, err := b.NewWriter(context.Background())
				if err != nil {
					errs[i] = err
					return
				}
				if _, err := w.WriteFrom(context.Background(), bytes.NewReader(data), nil); err != nil {
					errs[i] = err
					return
				}
				errs[i] = w.Commit(context.Background(), d)
			})
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		require.Equal(t, []string{blobName(d)}, b.blobs(t))
		require.True(t, bytes.Equal(data, readAll(t, b, d)))
		require.Empty(t, b.leftovers(t))
	})
}

func TestSuiteWriter(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		data := content(2*testPartSize + 7)
		d := digest.FromBytes(data)
		w, err := b.NewWriter(ctx)
		require.NoError(t, err)
		_, err = w.WriteFrom(ctx, bytes.NewReader(data[:1000]), nil)
		require.NoError(t, err)
		// Readers follow the growing temporary file.
		f, err := os.ReadFile(w.Path())
		require.NoError(t, err)
		require.Equal(t, data[:1000], f)
		_, err = w.WriteFrom(ctx, bytes.NewReader(data[1000:]), nil)
		require.NoError(t, err)
		require.NoError(t, w.Verify(ctx, d))
		require.Empty(t, b.blobs(t), "verified is not stored")
		require.NoError(t, w.Commit(ctx, d))
		require.True(t, bytes.Equal(data, readAll(t, b, d)))

		// Cancel, a mismatch and a cancelled commit store nothing.
		other := content(3000)
		w, err = b.NewWriter(ctx)
		require.NoError(t, err)
		_, err = w.Write(other)
		require.NoError(t, err)
		require.NoError(t, w.Cancel())
		w, err = b.NewWriter(ctx)
		require.NoError(t, err)
		_, err = w.Write(other)
		require.NoError(t, err)
		require.ErrorIs(t, w.Commit(ctx, d), ErrDigestMismatch)
		w, err = b.NewWriter(ctx)
		require.NoError(t, err)
		_, err = w.Write(other)
		require.NoError(t, err)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.Error(t, w.Commit(cctx, digest.FromBytes(other)))
		require.Equal(t, []string{blobName(d)}, b.blobs(t))
		require.Empty(t, b.leftovers(t))
	})
}

func TestSuiteDelete(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		data := content(10)
		d := digest.FromBytes(data)
		require.ErrorIs(t, b.Delete(ctx, d), ErrNotFound)
		_, err := b.Put(ctx, d, bytes.NewReader(data))
		require.NoError(t, err)
		require.NoError(t, b.Delete(ctx, d))
		_, err = b.Open(ctx, d)
		require.ErrorIs(t, err, ErrNotFound)
		_, err = b.Stat(ctx, "sha256:nothex")
		require.ErrorIs(t, err, ErrNotFound)
		require.Empty(t, b.blobs(t))
	})
}

// chunked appends data to a new session in chunks of the given sizes (the last one takes the rest),
// each through the next of stores in turn, as a client whose PATCHes reach different nodes.
func chunked(t *testing.T, stores []Store, data []byte, sizes ...int) string {
	t.Helper()
	ctx := context.Background()
	id, err := stores[0].StartUpload(ctx)
	require.NoError(t, err)
	off := 0
	for i := 0; off < len(data); i++ {
		n := len(data) - off
		if i < len(sizes) {
			n = min(sizes[i], n)
		}
		s := stores[i%len(stores)]
		size, err := s.AppendUpload(ctx, id, int64(off), bytes.NewReader(data[off:off+n]))
		require.NoError(t, err)
		off += n
		require.Equal(t, int64(off), size)
		got, err := stores[(i+1)%len(stores)].UploadSize(ctx, id)
		require.NoError(t, err)
		require.Equal(t, int64(off), got)
	}
	return id
}

func TestSuiteUploadAcrossNodes(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		stores := []Store{b.Store}
		if b.another != nil {
			stores = append(stores, b.another(t), b.another(t))
		}
		data := content(3*testPartSize + 999)
		sizes := []int{3 << 20, 4 << 20, 1, testPartSize, 2 << 20, 100}
		for _, d := range []digest.Digest{digest.FromBytes(data), sha512Of(data)} {
			id := chunked(t, stores, data, sizes...)
			n, err := stores[len(stores)-1].CommitUpload(ctx, id, d)
			require.NoError(t, err)
			require.Equal(t, int64(len(data)), n)
			require.True(t, bytes.Equal(data, readAll(t, stores[1%len(stores)], d)))
			_, err = b.UploadSize(ctx, id)
			require.ErrorIs(t, err, ErrNotFound)
		}
		// Small sessions: no part is ever full; and an empty one.
		small := content(1234)
		id := chunked(t, stores, small, 1, 1000)
		_, err := b.CommitUpload(ctx, id, sha512Of(small))
		require.NoError(t, err)
		id = chunked(t, stores, nil)
		_, err = b.CommitUpload(ctx, id, digest.FromBytes(nil))
		require.NoError(t, err)
		require.Equal(t, []byte{}, readAll(t, b, digest.FromBytes(nil)))
		require.Len(t, b.blobs(t), 4)
		require.Empty(t, b.leftovers(t))
	})
}

func TestSuiteUploadFailuresAndAborts(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		data := content(2*testPartSize + 5)
		d := digest.FromBytes(data)
		id := chunked(t, []Store{b}, data[:1000])
		// Wrong offset.
		size, err := b.AppendUpload(ctx, id, 5, bytes.NewReader(data[1000:2000]))
		require.ErrorIs(t, err, ErrOffsetMismatch)
		require.Equal(t, int64(1000), size)
		// A client that hangs up past a part boundary leaves the session where it was.
		_, err = b.AppendUpload(ctx, id, 1000, &failingReader{data: data[1000 : 2000+testPartSize], err: errBoom})
		require.Error(t, err)
		size, err = b.UploadSize(ctx, id)
		require.NoError(t, err)
		require.Equal(t, int64(1000), size)
		_, err = b.AppendUpload(ctx, id, 1000, bytes.NewReader(data[1000:]))
		require.NoError(t, err)
		// An invalid digest keeps the session; a mismatch removes it.
		_, err = b.CommitUpload(ctx, id, "sha256:bad")
		require.ErrorIs(t, err, ErrInvalidDigest)
		_, err = b.CommitUpload(ctx, id, digest.FromBytes([]byte("x")))
		require.ErrorIs(t, err, ErrDigestMismatch)
		_, err = b.UploadSize(ctx, id)
		require.ErrorIs(t, err, ErrNotFound)
		// A sha512 mismatch is found after assembling: removed too.
		id = chunked(t, []Store{b}, data, testPartSize+1)
		_, err = b.CommitUpload(ctx, id, sha512Of([]byte("x")))
		require.ErrorIs(t, err, ErrDigestMismatch)
		// Cancel.
		id = chunked(t, []Store{b}, data, testPartSize+1)
		require.NoError(t, b.CancelUpload(ctx, id))
		require.ErrorIs(t, b.CancelUpload(ctx, id), ErrNotFound)
		// Abandoned: purged with its multipart upload.
		id = chunked(t, []Store{b}, data, testPartSize+1)
		n, err := b.purge(ctx, time.Now().Add(-time.Hour))
		require.NoError(t, err)
		require.Zero(t, n, "a live session stays")
		n, err = b.purge(ctx, time.Now().Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = b.UploadSize(ctx, id)
		require.ErrorIs(t, err, ErrNotFound)
		_, err = b.Stat(ctx, d)
		require.ErrorIs(t, err, ErrNotFound)
		require.Empty(t, b.blobs(t))
		require.Empty(t, b.leftovers(t))
	})
}

// TestSuiteWalk: the garbage collector's listing sees every stored blob of both algorithms with its
// size and a recent time, on both backends.
func TestSuiteWalk(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		want := map[digest.Digest]int64{}
		for _, d := range []digest.Digest{digest.FromString("one"), digest.FromString("three"), digest.SHA512.FromString("long")} {
			data := map[digest.Digest]string{digest.FromString("one"): "one", digest.FromString("three"): "three",
				digest.SHA512.FromString("long"): "long"}[d]
			_, err := b.Put(ctx, d, strings.NewReader(data))
			require.NoError(t, err)
			want[d] = int64(len(data))
		}
		w, ok := b.Store.(BlobWalker)
		require.True(t, ok, "the backend lists its blobs")
		got := map[digest.Digest]int64{}
		require.NoError(t, w.Walk(ctx, func(bi BlobInfo) error {
			got[bi.Digest] = bi.Size
			require.WithinDuration(t, time.Now(), bi.ModTime, 5*time.Minute)
			return nil
		}))
		require.Equal(t, want, got)
	})
}
