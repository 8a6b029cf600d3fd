package transfer

import "sync"

// Buffers for the read/write paths, pooled per size so the steady state
// does not allocate. Sizes come from Config and rarely vary.
var buffers sync.Map // int -> *sync.Pool of *[]byte

func getBuffer(size int) *[]byte {
	p, ok := buffers.Load(size)
	if !ok { // only then build a pool: LoadOrStore's argument allocates
		p, _ = buffers.LoadOrStore(size, &sync.Pool{New: func() any {
			b := make([]byte, size)
			return &b
		}})
	}
	return p.(*sync.Pool).Get().(*[]byte)
}

func putBuffer(b *[]byte) {
	if p, ok := buffers.Load(len(*b)); ok {
		p.(*sync.Pool).Put(b)
	}
}

// bufferFor is the buffer size for moving length bytes with buffers of at
// most size: the smallest power of two from 4 KiB that holds length, so
// that a small transfer does not hold a whole 1 MiB buffer (and the
// pools stay few: one per power of two).
func bufferFor(size int, length int64) int {
	b := 4096
	for b < size && int64(b) < length {
		b <<= 1
	}
	return min(b, size)
}
