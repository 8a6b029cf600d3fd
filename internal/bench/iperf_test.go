package bench

import "testing"

func TestParseIperf(t *testing.T) {
	ok := `{"start":{},"intervals":[],"end":{"sum_sent":{"bytes":2147483648,"seconds":1.25},
		"sum_received":{"bytes":2147483648,"seconds":1.28},"cpu_utilization_percent":{}}}`
	r, err := parseIperf([]byte(ok))
	if err != nil || r.End.SumReceived.Bytes != 2147483648 || r.End.SumReceived.Seconds != 1.28 {
		t.Errorf("parseIperf(ok) = %+v, %v, want 2147483648 bytes in 1.28 s", r.End.SumReceived, err)
	}
	busy := `{"start":{},"intervals":[],"end":{},"error":"error - the server is busy running a test. try again later"}`
	if r, err := parseIperf([]byte(busy)); err != nil || r.Error == "" {
		t.Errorf("parseIperf(busy) = %q, %v, want the error field and no parse error", r.Error, err)
	}
	for _, bad := range []string{"", "iperf3: error", `{"end":{}}`} {
		if _, err := parseIperf([]byte(bad)); err == nil {
			t.Errorf("parseIperf(%q) succeeded, want an error", bad)
		}
	}
}
