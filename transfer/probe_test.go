package transfer

import (
	"os"
	"strings"
	"testing"
)

// TestProbeKernelTLS: the kTLS probe agrees with the kernel's own list of
// TCP upper-layer protocols, read after the probe (which may have loaded
// the tls module).
func TestProbeKernelTLS(t *testing.T) {
	got := probeKernelTLS()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_available_ulp")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Contains(" "+strings.TrimSpace(string(b))+" ", " tls "); got != want {
		t.Errorf("probeKernelTLS() = %v; tcp_available_ulp is %q", got, strings.TrimSpace(string(b)))
	}
}
