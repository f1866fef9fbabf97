// Package monitor holds what a long-running cnpg-preflight (serve) knows — the verdicts of the
// last round, counters, the check loop's progress — and serves it over HTTP: /metrics in the
// Prometheus text format (with the Prometheus Go client library, on a registry of its own),
// /healthz and /readyz. Label values are names of Kubernetes objects and check IDs, never
// anything read from a Secret.
package monitor

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// Statuses are the values of the status label of cnpg_preflight_check_status, one series each.
var Statuses = []report.Status{report.Pass, report.Fail, report.Warn, report.Skip}

var (
	targetLabels = []string{"target", "namespace", "cnpg_cluster", "role"}
	checkLabels  = append(append([]string(nil), targetLabels...), "check")

	descStatus = prometheus.NewDesc("cnpg_preflight_check_status",
		"Status of a check of a target in the last round: 1 for the series whose status label is the check's status (pass, fail, warn or skip), 0 for the others.",
		append(append([]string(nil), checkLabels...), "status"), nil)
	descDuration = prometheus.NewDesc("cnpg_preflight_check_duration_seconds",
		"How long a check of a target took in the last round.", checkLabels, nil)
	descFailed = prometheus.NewDesc("cnpg_preflight_target_failed",
		"1 when a check of the target failed or a probe object was left behind in the last round (the exit-code verdict), else 0.", targetLabels, nil)
	descLastRun = prometheus.NewDesc("cnpg_preflight_target_last_run_timestamp_seconds",
		"When the last round that checked the target finished (Unix time).", targetLabels, nil)
	descLeftovers = prometheus.NewDesc("cnpg_preflight_target_leftover_probes",
		"Probe objects (and multipart uploads) of the last round that could not be deleted.", targetLabels, nil)
	descRequests = prometheus.NewDesc("cnpg_preflight_target_requests_total",
		"HTTP requests made to the target's object store since the process started.", targetLabels, nil)
	descTargets = prometheus.NewDesc("cnpg_preflight_targets",
		"Targets checked in the last round.", nil, nil)
	descRounds = prometheus.NewDesc("cnpg_preflight_rounds_total",
		"Rounds finished (every target checked once).", nil, nil)
	descRoundDuration = prometheus.NewDesc("cnpg_preflight_round_duration_seconds",
		"How long the last round took, discovery included.", nil, nil)
	descLastRound = prometheus.NewDesc("cnpg_preflight_last_round_timestamp_seconds",
		"When the last round finished (Unix time).", nil, nil)
	descDiscoveryErrors = prometheus.NewDesc("cnpg_preflight_discovery_errors_total",
		"Rounds that could not read their input (the Kubernetes API failed); the last results are kept.", nil, nil)
	descEventErrors = prometheus.NewDesc("cnpg_preflight_event_errors_total",
		"Kubernetes Events that could not be recorded (they are tried again next round).", nil, nil)
	descEvents = prometheus.NewDesc("cnpg_preflight_events_total",
		"Kubernetes Events recorded on Clusters, by reason.", []string{"reason"}, nil)
	descBuild = prometheus.NewDesc("cnpg_preflight_build_info",
		"Always 1; the version label is the cnpg-preflight version.", []string{"version"}, nil)
)

type target struct {
	t        *report.Target
	finished time.Time
}

// State is what the check loop reports; the HTTP handlers read it. Safe for concurrent use.
type State struct {
	version string
	now     func() time.Time

	// Scrapes are served from the metric families gathered once per change (a round, an Event):
	// 100 targets are ~6000 series, which would otherwise be rebuilt and sorted on every scrape.
	cacheMu  sync.Mutex
	inner    *prometheus.Registry
	cached   []*dto.MetricFamily
	cacheGen uint64

	mu              sync.Mutex
	gen             uint64 // bumped by every change of what Collect reports
	targets         []target
	requests        map[string]float64 // by target ID, cumulative
	rounds          float64
	discoveryErrors float64
	eventErrors     float64
	events          map[string]float64 // by reason
	lastRound       time.Time
	roundDuration   time.Duration
	deadline        time.Time // the loop must report progress before this (healthz)
	ready, stopping bool
}

// NewState returns an empty State; version is the build_info label.
func NewState(version string) *State {
	s := &State{version: version, now: time.Now, requests: map[string]float64{}, events: map[string]float64{}, inner: prometheus.NewRegistry(), gen: 1}
	s.inner.MustRegister(s)
	return s
}

// Gather implements prometheus.Gatherer: the metrics of Collect, gathered again only when they
// changed. The families returned are shared and must not be modified (promhttp does not).
func (s *State) Gather() ([]*dto.MetricFamily, error) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	if gen != s.cacheGen {
		mfs, err := s.inner.Gather()
		if err != nil {
			return nil, err
		}
		s.cached, s.cacheGen = mfs, gen
	}
	return s.cached, nil
}

// Expect tells the watchdog that the loop will report again within d.
func (s *State) Expect(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadline = s.now().Add(d)
}

// RoundDone publishes the matrix of a finished round (started at start): it replaces the
// targets (those gone are no longer exported) and adds their requests to the counters.
func (s *State) RoundDone(m *report.Matrix, start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	requests := map[string]float64{}
	s.targets = s.targets[:0]
	for _, t := range m.Targets {
		s.targets = append(s.targets, target{t: t, finished: now})
		requests[t.ID] = s.requests[t.ID] + float64(t.Requests)
	}
	s.requests = requests
	s.rounds++
	s.lastRound, s.roundDuration = now, now.Sub(start)
	s.ready = true
	s.gen++
}

// DiscoveryFailed counts a round that could not read its input.
func (s *State) DiscoveryFailed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.discoveryErrors++
	s.gen++
}

// EventRecorded counts an Event recorded (err nil) or one that could not be.
func (s *State) EventRecorded(reason string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	if err != nil {
		s.eventErrors++
		return
	}
	s.events[reason]++
}

// Stopping makes /readyz fail (graceful shutdown).
func (s *State) Stopping() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopping = true
}

// Describe implements prometheus.Collector.
func (s *State) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStatus, descDuration, descFailed, descLastRun, descLeftovers, descRequests, descTargets,
		descRounds, descRoundDuration, descLastRound, descDiscoveryErrors, descEventErrors, descEvents, descBuild} {
		ch <- d
	}
}

// label makes any string a valid label value (names from files are not validated).
func label(v string) string { return strings.ToValidUTF8(v, "\uFFFD") }

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// Collect implements prometheus.Collector: one series per target × check × status, and the
// target and loop metrics, from the last round.
func (s *State) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	emit := func(d *prometheus.Desc, vt prometheus.ValueType, v float64, lvs ...string) {
		if m, err := prometheus.NewConstMetric(d, vt, v, lvs...); err == nil {
			ch <- m
		}
	}
	for _, tg := range s.targets {
		t := tg.t
		tl := []string{label(t.ID), label(t.Cluster.Namespace), label(t.Cluster.Name), label(t.Role)}
		for _, c := range t.Checks {
			cl := append(append([]string(nil), tl...), label(c.ID))
			for _, st := range Statuses {
				v := 0.0
				if c.Status == st {
					v = 1
				}
				emit(descStatus, prometheus.GaugeValue, v, append(append([]string(nil), cl...), string(st))...)
			}
			emit(descDuration, prometheus.GaugeValue, float64(c.DurationMs)/1000, cl...)
		}
		failed := 0.0
		if t.Failed() {
			failed = 1
		}
		emit(descFailed, prometheus.GaugeValue, failed, tl...)
		emit(descLastRun, prometheus.GaugeValue, unix(tg.finished), tl...)
		emit(descLeftovers, prometheus.GaugeValue, float64(len(t.Leftovers)), tl...)
		emit(descRequests, prometheus.CounterValue, s.requests[t.ID], tl...)
	}
	emit(descTargets, prometheus.GaugeValue, float64(len(s.targets)))
	emit(descRounds, prometheus.CounterValue, s.rounds)
	emit(descRoundDuration, prometheus.GaugeValue, s.roundDuration.Seconds())
	emit(descLastRound, prometheus.GaugeValue, unix(s.lastRound))
	emit(descDiscoveryErrors, prometheus.CounterValue, s.discoveryErrors)
	emit(descEventErrors, prometheus.CounterValue, s.eventErrors)
	for reason, n := range s.events {
		emit(descEvents, prometheus.CounterValue, n, reason)
	}
	emit(descBuild, prometheus.GaugeValue, 1, label(s.version))
}

// Handler serves /metrics (this State plus the Go runtime and process metrics), /healthz (the
// check loop makes progress) and /readyz (a round has finished and the process is not stopping).
func (s *State) Handler() http.Handler {
	runtime := prometheus.NewRegistry()
	runtime.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	// Not prometheus.Gatherers: it would re-check and re-sort every cached series on each scrape;
	// the two sets of families are valid and sorted, and their names (go_, process_, promhttp_ and
	// cnpg_preflight_) never meet.
	both := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		rt, err := runtime.Gather()
		own, err2 := s.Gather()
		return append(append(make([]*dto.MetricFamily, 0, len(rt)+len(own)), rt...), own...), errors.Join(err, err2)
	})
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(runtime, promhttp.HandlerFor(both, promhttp.HandlerOpts{
		MaxRequestsInFlight: 4, Timeout: 30 * time.Second, ErrorHandling: promhttp.ContinueOnError})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		late := !s.deadline.IsZero() && s.now().After(s.deadline)
		since := s.now().Sub(s.deadline)
		s.mu.Unlock()
		if late {
			plain(w, http.StatusServiceUnavailable, fmt.Sprintf("the check loop is stuck: it is %s late", since.Round(time.Second)))
			return
		}
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		ready, stopping := s.ready, s.stopping
		s.mu.Unlock()
		switch {
		case stopping:
			plain(w, http.StatusServiceUnavailable, "shutting down")
		case !ready:
			plain(w, http.StatusServiceUnavailable, "no round has finished yet")
		default:
			plain(w, http.StatusOK, "ok")
		}
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		plain(w, http.StatusOK, "cnpg-preflight serve: /metrics /healthz /readyz")
	})
	return mux
}

func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// RoundBound is how long a round of n targets may take: every wave of concurrency targets
// is bounded by the per-target timeout plus the cleanup budget (10 s).
func RoundBound(n, concurrency int, timeout time.Duration) time.Duration {
	waves := math.Ceil(float64(max(n, 1)) / float64(max(concurrency, 1)))
	return time.Duration(waves)*(timeout+11*time.Second) + 10*time.Second
}
