package service

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferrydev/ferry/transfer"
)

// durationBuckets span a transfer's or a call's life, from a small file
// on loopback (1 ms) to a large one over a slow link (30 min).
var durationBuckets = []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 120, 300, 600, 1800}

// metrics are a node's Prometheus metrics, on a registry of its own (not
// the process-wide default), so that one process can run many nodes.
type metrics struct {
	reg       *prometheus.Registry
	grpc      *grpcprom.ServerMetrics
	bytesSent *prometheus.CounterVec
	transfers *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	active    prometheus.Gauge
	issued    prometheus.Counter
	refused   *prometheus.CounterVec
}

// newMetrics registers the gRPC server metrics, Ferry's data-plane
// metrics, the Go runtime and process collectors, and a gauge of pending
// tickets read from pending at each scrape.
func newMetrics(pending func() int) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(durationBuckets))),
		bytesSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_transfer_bytes_sent_total",
			Help: "Bytes sent, on the data channel or inline in the offer (strategy inline); added when each transfer ends.",
		}, []string{"strategy"}),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_transfers_total",
			Help: "Transfers offered and ended, by strategy and outcome (ok, error, canceled, expired).",
		}, []string{"strategy", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_transfer_duration_seconds",
			Help:    "Time the sender's copy loop took for a transfer that ended ok, by strategy.",
			Buckets: durationBuckets,
		}, []string{"strategy"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ferry_transfers_active",
			Help: "Transfers whose data connection is sending now.",
		}),
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_tickets_issued_total",
			Help: "Tickets issued: offers made with a data connection to come (inline ones take none).",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_tickets_refused_total",
			Help: "Offers and data connections refused, by reason.",
		}, []string{"reason"}),
	}
	pendingGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ferry_tickets_pending",
		Help: "Tickets issued whose data connection has not come yet.",
	}, func() float64 { return float64(pending()) })
	m.reg.MustRegister(m.grpc, m.bytesSent, m.transfers, m.duration, m.active, m.issued, m.refused, pendingGauge,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.initLabels()
	return m
}

// initLabels creates every series at zero, so a rate over a series that
// has never moved is 0, not absent.
func (m *metrics) initLabels() {
	for _, s := range append(strategyLabels(), inlineLabel) {
		m.bytesSent.WithLabelValues(s)
		m.duration.WithLabelValues(s)
		for _, o := range []transfer.Outcome{transfer.OutcomeOK, transfer.OutcomeError, transfer.OutcomeCanceled, transfer.OutcomeExpired} {
			m.transfers.WithLabelValues(s, string(o))
		}
	}
	for _, r := range []transfer.Refusal{transfer.RefusedBusy, transfer.RefusedHandshakeLimit,
		transfer.RefusedBadPreamble, transfer.RefusedUnknownTicket, transfer.RefusedWrongClient, transfer.RefusedSessionFull,
		transfer.RefusedPlaintext} {
		m.refused.WithLabelValues(string(r))
	}
}

// inlineLabel is the strategy label of a transfer whose bytes went inline
// in the offer, on the control connection.
const inlineLabel = "inline"

// strategyLabel is a transfer's strategy as a label value: "sendfile",
// "read_write", or inlineLabel.
func strategyLabel(st transfer.Stats) string {
	if st.Inline {
		return inlineLabel
	}
	return strings.ToLower(st.Strategy.String())
}

func strategyLabels() []string {
	var labels []string
	for _, s := range transfer.Strategies {
		labels = append(labels, strategyLabel(transfer.Stats{Strategy: s}))
	}
	return labels
}

// events adapts the data plane's hooks to the metrics.
func (m *metrics) events() transfer.Events {
	return transfer.Events{
		Issued:  m.issued.Inc,
		Refused: func(r transfer.Refusal) { m.refused.WithLabelValues(string(r)).Inc() },
		Started: m.active.Inc,
		Finished: func(f transfer.Finish) {
			s := strategyLabel(f.Stats)
			if f.Started {
				m.active.Dec()
			}
			m.bytesSent.WithLabelValues(s).Add(float64(f.Stats.Bytes))
			m.transfers.WithLabelValues(s, string(f.Outcome)).Inc()
			if f.Outcome == transfer.OutcomeOK {
				m.duration.WithLabelValues(s).Observe(f.Stats.Duration.Seconds())
			}
		},
	}
}

// metricsServer serves /metrics on its own listener: an admin port apart
// from the control plane, with no authentication.
type metricsServer struct {
	ln  net.Listener
	srv *http.Server
}

// metricsIdleTimeout closes a scraper's keep-alive connection that has
// carried no request for this long. Prometheus scrapes every 15 s to 1 min
// and keeps its connection; a client that stops scraping, or one that
// opens connections and leaves them, does not hold a goroutine and a
// descriptor of ferryd's for ever (the endpoint has no authentication).
const metricsIdleTimeout = 2 * time.Minute

func listenMetrics(addr string, reg *prometheus.Registry) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return &metricsServer{ln: ln, srv: &http.Server{Handler: mux,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: metricsIdleTimeout}}, nil
}

// serve runs until shutdown; it returns nil after a shutdown.
func (ms *metricsServer) serve() error {
	if err := ms.srv.Serve(ms.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
