package service_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
)

// TestMetrics runs downloads with two strategies and one inline, a refused
// ticket, a bad preamble and a refused call on a node with a metrics listener, scrapes
// /metrics over HTTP and checks the counters exactly; after shutdown the
// listener must be closed.
func TestMetrics(t *testing.T) {
	n := startNode(t, service.Config{MetricsListen: "127.0.0.1:0"})
	sizes := map[ferryv1.Strategy]int{
		ferryv1.Strategy_STRATEGY_READ_WRITE: 100_003,
		ferryv1.Strategy_STRATEGY_SENDFILE:   1<<20 + 5,
	}
	for strategy, size := range sizes {
		name := strategy.String() + ".bin"
		writeFile(t, n.root, name, size)
		if got := rawDownload(t, n, name, strategy); got != int64(size) {
			t.Fatalf("Download(%s) carried %d bytes, want %d", name, got, size)
		}
	}
	writeFile(t, n.root, "small.bin", 999)
	if got := inlineDownload(t, n, "small.bin"); got != 999 {
		t.Fatalf("Download(small.bin, inline) carried %d bytes in its offer, want 999", got)
	}
	if _, v := dialData(t, n.DataAddr().String(), make([]byte, transfer.TicketSize)); v != transfer.VerdictRefused {
		t.Fatalf("a made-up ticket got verdict %v, want %v", v, transfer.VerdictRefused)
	}
	badPreamble(t, n.DataAddr().String())
	stream, err := n.api().Download(testCtx(t), &ferryv1.DownloadRequest{Path: "missing.bin"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Download(missing.bin) = %v, want NotFound", err)
	}

	mfs := scrape(t, n.MetricsAddr().String())
	const dl = `grpc_method="Download",grpc_service="ferry.v1.TransferService",grpc_type="server_stream"`
	want := map[string]float64{
		`ferry_transfer_bytes_sent_total{strategy="read_write"}`:          100_003,
		`ferry_transfer_bytes_sent_total{strategy="sendfile"}`:            1<<20 + 5,
		`ferry_transfer_bytes_sent_total{strategy="splice"}`:              0,
		`ferry_transfer_bytes_sent_total{strategy="inline"}`:              999,
		`ferry_transfers_total{outcome="ok",strategy="inline"}`:           1,
		`ferry_transfers_total{outcome="ok",strategy="read_write"}`:       1,
		`ferry_transfers_total{outcome="ok",strategy="sendfile"}`:         1,
		`ferry_transfers_total{outcome="error",strategy="sendfile"}`:      0,
		`ferry_transfers_total{outcome="canceled",strategy="read_write"}`: 0,
		`ferry_transfer_duration_seconds_count{strategy="read_write"}`:    1,
		`ferry_transfer_duration_seconds_count{strategy="sendfile"}`:      1,
		`ferry_transfer_duration_seconds_count{strategy="mmap"}`:          0,
		`ferry_transfers_active`:                                          0,
		`ferry_tickets_pending`:                                           0,
		`ferry_tickets_issued_total`:                                      2,
		`ferry_tickets_refused_total{reason="unknown_ticket"}`:            1,
		`ferry_tickets_refused_total{reason="bad_preamble"}`:              1,
		`ferry_tickets_refused_total{reason="wrong_client"}`:              0,
		`grpc_server_handled_total{grpc_code="OK",` + dl + `}`:            3,
		`grpc_server_handled_total{grpc_code="NotFound",` + dl + `}`:      1,
		`grpc_server_started_total{` + dl + `}`:                           4,
		`grpc_server_handling_seconds_count{` + dl + `}`:                  4,
		// Created at zero for every method: nothing here calls StatFile.
		`grpc_server_handled_total{grpc_code="OK",grpc_method="StatFile",grpc_service="ferry.v1.TransferService",grpc_type="unary"}`: 0,
	}
	for series, w := range want {
		got, ok := mfs[series]
		if !ok {
			t.Errorf("/metrics has no series %s", series)
		} else if got != w {
			t.Errorf("/metrics: %s = %v, want %v", series, got, w)
		}
	}
	if _, ok := mfs["go_goroutines"]; !ok {
		t.Errorf("/metrics lacks the Go collector's go_goroutines")
	}

	addr := n.MetricsAddr().String()
	if err := n.stop(); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("the metrics listener %s still accepts connections after shutdown", addr)
	}
}

// TestMetricsListenTaken: a metrics address that cannot be bound fails
// NewNode, naming the flag.
func TestMetricsListenTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n, err := service.NewNode(service.Config{Root: t.TempDir(), Listen: "127.0.0.1:0", DataListen: "127.0.0.1:0",
		MetricsListen: ln.Addr().String(), Logger: quiet})
	if err == nil {
		n.Close()
		t.Fatalf("NewNode(MetricsListen %s, taken) = nil error", ln.Addr())
	}
	if !strings.Contains(err.Error(), "--metrics-listen") {
		t.Errorf("NewNode(MetricsListen taken) = %q, want it to name --metrics-listen", err)
	}
}

// TestMetricsOff: without MetricsListen there is no metrics listener.
func TestMetricsOff(t *testing.T) {
	n := startNode(t, service.Config{})
	if a := n.MetricsAddr(); a != nil {
		t.Errorf("MetricsAddr() = %v without MetricsListen, want nil", a)
	}
}

// rawDownload runs one Download by hand: it reads the data channel to its
// end and the call to its status, so that every server-side counter of
// the call is final when it returns. It returns the bytes carried.
func rawDownload(t *testing.T, n *testNode, path string, strategy ferryv1.Strategy) int64 {
	t.Helper()
	stream, offer := startDownload(t, testCtx(t), n.api(), &ferryv1.DownloadRequest{Path: path, Strategy: strategy})
	if offer.GetStrategy() != strategy {
		t.Fatalf("Download(%s, %v) offered %v", path, strategy, offer.GetStrategy())
	}
	c, v := dialData(t, n.DataAddr().String(), offer.GetTicket())
	if v != transfer.VerdictOK {
		t.Fatalf("Download(%s): verdict %v", path, v)
	}
	got, err := io.Copy(io.Discard, c)
	if err != nil {
		t.Fatalf("Download(%s): reading the data channel: %v", path, err)
	}
	for {
		if _, err := stream.Recv(); errors.Is(err, io.EOF) {
			return got
		} else if err != nil {
			t.Fatalf("Download(%s) = %v", path, err)
		}
	}
}

// inlineDownload runs one Download whose bytes come inline in the offer,
// reading the call to its status; it returns the bytes the offer carried.
func inlineDownload(t *testing.T, n *testNode, path string) int {
	t.Helper()
	stream, offer := startDownload(t, testCtx(t), n.api(), &ferryv1.DownloadRequest{Path: path, InlineMax: 1 << 20})
	if !offer.GetInline() {
		t.Fatalf("Download(%s, InlineMax 1 MiB): offer %v is not inline", path, offer)
	}
	for {
		if _, err := stream.Recv(); errors.Is(err, io.EOF) {
			return len(offer.GetData())
		} else if err != nil {
			t.Fatalf("Download(%s) = %v", path, err)
		}
	}
}

// badPreamble sends a preamble with the wrong magic and checks the verdict.
func badPreamble(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(append([]byte("NOPE\x01"), make([]byte, transfer.TicketSize)...)); err != nil {
		t.Fatal(err)
	}
	var v [1]byte
	if _, err := io.ReadFull(c, v[:]); err != nil || transfer.Verdict(v[0]) != transfer.VerdictBadPreamble {
		t.Fatalf("a bad preamble got verdict %v (%v), want %v", transfer.Verdict(v[0]), err, transfer.VerdictBadPreamble)
	}
}

// scrape GETs http://addr/metrics, parses the text exposition format and
// returns every sample as `name{label="value",...}` (labels sorted) ->
// value; a histogram gives its _count and _sum.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := seriesKey(m.GetLabel())
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[name+key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name+key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"_count"+key] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+key] = m.GetHistogram().GetSampleSum()
			default:
				out[name+key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

func seriesKey(labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return ""
	}
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ",") + "}"
}
