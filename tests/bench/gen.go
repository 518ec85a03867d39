package bench

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/opencontainers/go-digest"
)

// genBlock is the period of generated content: every block is the same random block with its first 8
// bytes replaced by the block's index, so blocks differ and any byte is computed in O(1).
const genBlock = 1 << 20

// Content is deterministic blob content of any size generated from a seed, readable at any offset
// without holding it in memory (1 MiB of state). It is safe for concurrent use.
type Content struct {
	Seed uint64
	Size int64
	base []byte
}

var _ io.ReaderAt = (*Content)(nil)

// NewContent returns the content of size bytes generated from seed.
func NewContent(seed uint64, size int64) *Content {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	copy(key[8:], "berth-bench-content")
	base := make([]byte, genBlock)
	_, _ = rand.NewChaCha8(key).Read(base) // ChaCha8.Read never fails
	return &Content{Seed: seed, Size: size, base: base}
}

// ReadAt fills p with the bytes at off; io.EOF when p reaches past the end.
func (c *Content) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("bench: negative offset %d", off)
	}
	if off >= c.Size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := c.Size - off; int64(want) > rest {
		p = p[:rest]
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		block, within := pos/genBlock, int(pos%genBlock)
		m := copy(p[n:], c.base[within:])
		if within < 8 {
			var stamp [8]byte
			binary.LittleEndian.PutUint64(stamp[:], uint64(block)^c.Seed)
			copy(p[n:n+m], stamp[within:])
		}
		n += m
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// Reader returns a reader of the content from off to the end.
func (c *Content) Reader(off int64) io.Reader { return io.NewSectionReader(c, off, c.Size-off) }

// Bytes materialises the whole content (for the in-memory baseline; keep Size small).
func (c *Content) Bytes() []byte {
	b := make([]byte, c.Size)
	_, _ = c.ReadAt(b, 0) // a full read ends exactly at Size: no error to report
	return b
}

// Digest is the sha256 digest of the content, computed by streaming it.
func (c *Content) Digest() digest.Digest {
	h := sha256.New()
	_, _ = io.CopyBuffer(h, c.Reader(0), make([]byte, genBlock)) // hash writes and ReadAt cannot fail
	return digest.NewDigest(digest.SHA256, h)
}
