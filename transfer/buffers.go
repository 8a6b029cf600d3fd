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
