package storage

import "hash"

const (
	copyChunk = 256 << 10 // bytes read from the source at most per chunk
	copyRing  = 8         // chunks in flight between the copy and the hasher: 2 MiB per writer at most
)

// hasher hashes chunks on its own goroutine, in order, and hands each buffer back once hashed. The
// copying goroutine takes buffers with buffer, passes them filled to hash, and calls stop once, which
// waits until every chunk is hashed. Buffers are allocated lazily, copyRing at most.
type hasher struct {
	h    hash.Hash
	full chan []byte // filled chunks, in order
	free chan []byte // hashed buffers, ready for reuse
	made int
	done chan struct{}
}

func startHasher(h hash.Hash) *hasher {
	x := &hasher{h: h, full: make(chan []byte, copyRing), free: make(chan []byte, copyRing), done: make(chan struct{})}
	go x.run()
	return x
}

func (x *hasher) run() {
	defer close(x.done)
	for b := range x.full {
		x.h.Write(b)
		x.free <- b[:cap(b)]
	}
}

// buffer returns an empty buffer, waiting for the hasher when copyRing are in flight.
func (x *hasher) buffer() []byte {
	select {
	case b := <-x.free:
		return b
	default:
	}
	if x.made < copyRing {
		x.made++
		return make([]byte, copyChunk)
	}
	return <-x.free
}

// hash queues b, which the caller no longer touches, for hashing.
func (x *hasher) hash(b []byte) { x.full <- b }

// stop waits until every queued chunk is hashed; the hash is then complete.
func (x *hasher) stop() {
	close(x.full)
	<-x.done
}
