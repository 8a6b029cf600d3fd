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
