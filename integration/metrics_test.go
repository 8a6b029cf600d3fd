package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsLine is ferryd's log line (text format) naming its metrics URL.
var metricsLine = regexp.MustCompile(`msg="serving metrics, unauthenticated" url=(\S+)`)

// TestMetricsEndpoint runs ferryd with --metrics-listen, pulls a file
// with the built ferry and scrapes /metrics with net/http.
func TestMetricsEndpoint(t *testing.T) {
	root := t.TempDir()
	const size = 3<<20 + 11
	writeRandom(t, root, "f.bin", size)
	d := startFerryd(t, root, "--metrics-listen", "127.0.0.1:0")
	m := metricsLine.FindStringSubmatch(d.Log.String())
	if m == nil {
		t.Fatalf("ferryd --metrics-listen logged no metrics URL:\n%s", d.Log)
	}
	ferryOK(t, "pull", "--server", d.Addr, "--strategy", "splice", "f.bin", filepath.Join(t.TempDir(), "f.bin"))

	got := scrapeMetrics(t, m[1])
	for series, want := range map[string]float64{
		`ferry_transfer_bytes_sent_total{strategy="splice"}`:    size,
		`ferry_transfers_total{outcome="ok",strategy="splice"}`: 1,
		`ferry_tickets_issued_total`:                            1,
		`ferry_transfers_active`:                                0,
		// Counted when the call starts: the handled count may trail the
		// client's exit, which comes once the report arrives.
		`grpc_server_started_total{grpc_method="Download",grpc_service="ferry.v1.TransferService",grpc_type="server_stream"}`: 1,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("/metrics: %s = %v (present: %v), want %v", series, v, ok, want)
		}
	}
	d.Stop(t)
	if _, err := http.Get(m[1]); err == nil {
		t.Errorf("GET %s after ferryd exited succeeded", m[1])
	}
}

// TestLogFormatJSON runs ferryd with --log-format json (and the metrics
// listener from FERRY_METRICS_LISTEN), pulls a file and stops it: every
// line ferryd wrote must be a JSON object, with one line for the finished
// call and one for the finished transfer.
func TestLogFormatJSON(t *testing.T) {
	root := t.TempDir()
	writeRandom(t, root, "f.bin", 1<<20)
	type logLine = map[string]any
	serving := make(chan logLine, 1)
	var bad []string
	log := newLines(func(line string) {
		var rec logLine
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			bad = append(bad, line) // under log's lock
			return
		}
		if rec["msg"] == "ferryd serving" {
			select {
			case serving <- rec:
			default:
			}
		}
	})
	cmd := exec.Command(bin.ferryd, "--root", root, "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--log-format", "json")
	cmd.Env, cmd.Stderr = append(cleanEnv(), "FERRY_METRICS_LISTEN=127.0.0.1:0"), log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() { // a test that failed half-way leaves no ferryd behind
		cmd.Process.Kill()
		<-exited
	})
	var addr string
	select {
	case rec := <-serving:
		addr, _ = rec["grpc"].(string)
	case <-exited:
		t.Fatalf("ferryd exited before serving: %v\n%s", waitErr, log)
	case <-time.After(startTimeout):
		t.Fatalf("ferryd logged no JSON serving line within %v:\n%s", startTimeout, log)
	}
	ferryOK(t, "pull", "--server", addr, "--strategy", "read-write", "f.bin", filepath.Join(t.TempDir(), "f.bin"))
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("ferryd exited with %v after SIGTERM:\n%s", waitErr, log)
		}
	case <-time.After(stopTimeout):
		t.Fatalf("ferryd did not exit within %v of SIGTERM:\n%s", stopTimeout, log)
	}

	if len(bad) > 0 {
		t.Errorf("ferryd --log-format json wrote lines that are not JSON: %q", bad)
	}
	var msgs []string
	var downloads, transfers int
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var rec logLine
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		msg, _ := rec["msg"].(string)
		msgs = append(msgs, msg)
		switch msg {
		case "transfer finished":
			transfers++
			want := fmt.Sprint(logLine{"level": "INFO", "path": "f.bin", "strategy": "READ_WRITE", "bytes": float64(1 << 20), "outcome": "ok"})
			if got := fmt.Sprint(fields(rec, "level", "path", "strategy", "bytes", "outcome")); got != want {
				t.Errorf("transfer line %v, want fields %s", rec, want)
			}
			if p, _ := rec["peer"].(string); !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("transfer line peer=%q, want the data connection's 127.0.0.1:port", p)
			}
		case "finished call":
			if rec["grpc.method"] != "Download" {
				break
			}
			downloads++
			if rec["grpc.code"] != "OK" {
				t.Errorf("call line %v, want grpc.code OK", rec)
			}
		case "serving metrics, unauthenticated":
			if u, _ := rec["url"].(string); !strings.HasPrefix(u, "http://127.0.0.1:") {
				t.Errorf("metrics line url=%q, want http://127.0.0.1:port/metrics", u)
			}
		}
	}
	for _, want := range []string{"serving metrics, unauthenticated", "ferryd serving"} {
		if !slices.Contains(msgs, want) {
			t.Errorf("ferryd's JSON log has no %q line; messages: %q", want, msgs)
		}
	}
	if downloads != 1 || transfers != 1 {
		t.Errorf("one pull logged %d Download \"finished call\" lines and %d \"transfer finished\" lines, want 1 and 1; messages: %q",
			downloads, transfers, msgs)
	}
}

// fields returns rec's values of keys.
func fields(rec map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		out[k] = rec[k]
	}
	return out
}

// scrapeClient holds at most one connection per ferryd: a scrape waits
// for the connection the last one used instead of dialling another. A
// test that compares ferryd's go_goroutines over time (each of ferryd's
// HTTP connections is a goroutine) must not see a second connection,
// which net/http's default client dials when, on a loaded machine, the
// last response's connection has not yet gone back to its idle pool.
var scrapeClient = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}

// scrapeMetrics GETs url, parses the text exposition format and returns
// each counter and gauge sample as `name{label="value",...}` (labels
// sorted) -> value.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := scrapeClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}
