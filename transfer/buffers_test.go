package transfer

import "testing"

// TestBufferPoolAllocs checks that taking and returning a pooled buffer
// does not allocate in the steady state.
func TestBufferPoolAllocs(t *testing.T) {
	putBuffer(getBuffer(12345)) // the first use makes the pool and a buffer
	allocs := testing.AllocsPerRun(100, func() {
		putBuffer(getBuffer(12345))
	})
	if allocs > 0 {
		t.Errorf("getBuffer+putBuffer allocates %v times per call, want 0", allocs)
	}
	b := getBuffer(4096)
	if len(*b) != 4096 {
		t.Errorf("len(*getBuffer(4096)) = %d, want 4096", len(*b))
	}
	putBuffer(b)
}

// TestBufferFor: a READ_WRITE transfer takes the smallest power-of-two
// buffer (from 4 KiB) that holds it, never more than the configured size.
func TestBufferFor(t *testing.T) {
	for _, tt := range []struct {
		size   int
		length int64
		want   int
	}{
		{1 << 20, 0, 4096},
		{1 << 20, 1, 4096},
		{1 << 20, 4096, 4096},
		{1 << 20, 4097, 8192},
		{1 << 20, 100 << 10, 128 << 10},
		{1 << 20, 1 << 20, 1 << 20},
		{1 << 20, 5 << 30, 1 << 20},
		{4096, 1 << 20, 4096},
		{65535, 1 << 20, 65535},
		{65537, 70000, 65537},
	} {
		if got := bufferFor(tt.size, tt.length); got != tt.want {
			t.Errorf("bufferFor(%d, %d) = %d, want %d", tt.size, tt.length, got, tt.want)
		}
	}
}
