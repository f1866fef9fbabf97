package monitor

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cnpg-preflight/cnpg-preflight/report"
)

func matrix(targets ...*report.Target) *report.Matrix {
	return &report.Matrix{SchemaVersion: report.SchemaVersion, Targets: targets}
}

func row(id, cluster, role string, requests int64, statuses ...string) *report.Target {
	t := &report.Target{ID: id, Cluster: report.ClusterRef{Namespace: "db", Name: cluster}, Role: role, Requests: requests}
	for _, s := range statuses {
		id, st, _ := strings.Cut(s, "=")
		t.Checks = append(t.Checks, report.Check{ID: id, Status: report.Status(st), DurationMs: 1500})
	}
	return t
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestMetricsFollowTheLastRound(t *testing.T) {
	s := NewState("v1.2.3")
	clock := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return clock }
	bad := row("db/pg/backup", "pg", "backup", 5, "bucket=fail", "write=skip")
	bad.Leftovers = []string{"p/pg/cnpg-preflight-probe-x"}
	s.RoundDone(matrix(bad, row("db/old/backup", "old", "backup", 7, "bucket=pass")), clock.Add(-2*time.Second))
	s.RoundDone(matrix(row("db/pg/backup", "pg", "backup", 3, "bucket=pass", "write=warn")), clock.Add(-time.Second))

	want := `
# HELP cnpg_preflight_check_status Status of a check of a target in the last round: 1 for the series whose status label is the check's status (pass, fail, warn or skip), 0 for the others.
# TYPE cnpg_preflight_check_status gauge
cnpg_preflight_check_status{check="bucket",cnpg_cluster="pg",namespace="db",role="backup",status="fail",target="db/pg/backup"} 0
cnpg_preflight_check_status{check="bucket",cnpg_cluster="pg",namespace="db",role="backup",status="pass",target="db/pg/backup"} 1
cnpg_preflight_check_status{check="bucket",cnpg_cluster="pg",namespace="db",role="backup",status="skip",target="db/pg/backup"} 0
cnpg_preflight_check_status{check="bucket",cnpg_cluster="pg",namespace="db",role="backup",status="warn",target="db/pg/backup"} 0
cnpg_preflight_check_status{check="write",cnpg_cluster="pg",namespace="db",role="backup",status="fail",target="db/pg/backup"} 0
cnpg_preflight_check_status{check="write",cnpg_cluster="pg",namespace="db",role="backup",status="pass",target="db/pg/backup"} 0
cnpg_preflight_check_status{check="write",cnpg_cluster="pg",namespace="db",role="backup",status="skip",target="db/pg/backup"} 0
cnpg_preflight_check_status{check="write",cnpg_cluster="pg",namespace="db",role="backup",status="warn",target="db/pg/backup"} 1
# HELP cnpg_preflight_target_requests_total HTTP requests made to the target's object store since the process started.
# TYPE cnpg_preflight_target_requests_total counter
cnpg_preflight_target_requests_total{cnpg_cluster="pg",namespace="db",role="backup",target="db/pg/backup"} 8
# HELP cnpg_preflight_target_failed 1 when a check of the target failed or a probe object was left behind in the last round (the exit-code verdict), else 0.
# TYPE cnpg_preflight_target_failed gauge
cnpg_preflight_target_failed{cnpg_cluster="pg",namespace="db",role="backup",target="db/pg/backup"} 0
# HELP cnpg_preflight_target_leftover_probes Probe objects (and multipart uploads) of the last round that could not be deleted.
# TYPE cnpg_preflight_target_leftover_probes gauge
cnpg_preflight_target_leftover_probes{cnpg_cluster="pg",namespace="db",role="backup",target="db/pg/backup"} 0
# HELP cnpg_preflight_target_last_run_timestamp_seconds When the last round that checked the target finished (Unix time).
# TYPE cnpg_preflight_target_last_run_timestamp_seconds gauge
cnpg_preflight_target_last_run_timestamp_seconds{cnpg_cluster="pg",namespace="db",role="backup",target="db/pg/backup"} 1.8e+09
# HELP cnpg_preflight_rounds_total Rounds finished (every target checked once).
# TYPE cnpg_preflight_rounds_total counter
cnpg_preflight_rounds_total 2
# HELP cnpg_preflight_round_duration_seconds How long the last round took, discovery included.
# TYPE cnpg_preflight_round_duration_seconds gauge
cnpg_preflight_round_duration_seconds 1
# HELP cnpg_preflight_targets Targets checked in the last round.
# TYPE cnpg_preflight_targets gauge
cnpg_preflight_targets 1
# HELP cnpg_preflight_check_duration_seconds How long a check of a target took in the last round.
# TYPE cnpg_preflight_check_duration_seconds gauge
cnpg_preflight_check_duration_seconds{check="bucket",cnpg_cluster="pg",namespace="db",role="backup",target="db/pg/backup"} 1.5
cnpg_preflight_check_duration_seconds{check="write",cnpg_cluster="pg",namespace="db",role="backup",target="db/pg/backup"} 1.5
`
	// The Cluster that disappeared (db/old) is gone from every metric; requests add up.
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), "cnpg_preflight_check_status", "cnpg_preflight_target_requests_total",
		"cnpg_preflight_target_failed", "cnpg_preflight_target_leftover_probes", "cnpg_preflight_target_last_run_timestamp_seconds",
		"cnpg_preflight_rounds_total", "cnpg_preflight_round_duration_seconds", "cnpg_preflight_targets", "cnpg_preflight_check_duration_seconds"); err != nil {
		t.Error(err)
	}
}

func TestFailedTargetAndLeftovers(t *testing.T) {
	s := NewState("dev")
	bad := row("db/pg/backup", "pg", "backup", 5, "bucket=pass", "delete=pass")
	bad.Leftovers = []string{"p/pg/probe"}
	s.RoundDone(matrix(bad), time.Now())
	want := `
# HELP cnpg_preflight_target_failed 1 when a check of the target failed or a probe object was left behind in the last round (the exit-code verdict), else 0.
# TYPE cnpg_preflight_target_failed gauge
cnpg_preflight_target_failed{cnpg_cluster="pg",namespace="db",role="backup",target="db/pg/backup"} 1
# HELP cnpg_preflight_target_leftover_probes Probe objects (and multipart uploads) of the last round that could not be deleted.
# TYPE cnpg_preflight_target_leftover_probes gauge
cnpg_preflight_target_leftover_probes{cnpg_cluster="pg",namespace="db",role="backup",target="db/pg/backup"} 1
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), "cnpg_preflight_target_failed", "cnpg_preflight_target_leftover_probes"); err != nil {
		t.Error(err)
	}
}

// promlint: names, units, counters' _total, help texts.
func TestMetricsFollowPrometheusConventions(t *testing.T) {
	s := NewState("dev")
	s.RoundDone(matrix(row("db/pg/backup", "pg", "backup", 1, "bucket=pass")), time.Now())
	s.EventRecorded("PreflightFailed", nil)
	problems, err := testutil.CollectAndLint(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// Names read from files are not validated: a label value that is not UTF-8 must not break /metrics.
func TestInvalidUTF8LabelValue(t *testing.T) {
	s := NewState("dev")
	s.RoundDone(matrix(row("db/p\xffg/backup", "p\xffg", "backup", 1, "bucket=pass")), time.Now())
	code, body := get(t, s.Handler(), "/metrics")
	if code != 200 || !strings.Contains(body, `target="db/p`+"\uFFFD"+`g/backup"`) {
		t.Errorf("%d\n%s", code, body)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	s := NewState("dev")
	h := s.Handler()
	if code, body := get(t, h, "/readyz"); code != 503 || body != "no round has finished yet\n" {
		t.Errorf("readyz before a round: %d %q", code, body)
	}
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Errorf("healthz at start: %d", code)
	}
	s.Expect(time.Minute)
	s.RoundDone(matrix(), time.Now())
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Errorf("readyz after a round: %d", code)
	}
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Errorf("healthz on time: %d", code)
	}
	s.Expect(-time.Minute) // the loop promised progress a minute ago
	if code, body := get(t, h, "/healthz"); code != 503 || !strings.HasPrefix(body, "the check loop is stuck: it is 1m0s late") {
		t.Errorf("healthz when late: %d %q", code, body)
	}
	s.Stopping()
	if code, body := get(t, h, "/readyz"); code != 503 || body != "shutting down\n" {
		t.Errorf("readyz when stopping: %d %q", code, body)
	}
	if code, _ := get(t, h, "/nope"); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
	code, body := get(t, h, "/metrics")
	for _, m := range []string{"cnpg_preflight_build_info{version=\"dev\"} 1", "go_goroutines", "process_resident_memory_bytes", "promhttp_metric_handler_requests_total"} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics (%d) lacks %s", code, m)
		}
	}
}

func TestRoundBound(t *testing.T) {
	if got := RoundBound(100, 16, time.Minute); got != 7*(71*time.Second)+10*time.Second {
		t.Errorf("100 targets: %s", got)
	}
	if got := RoundBound(0, 16, time.Minute); got != 81*time.Second {
		t.Errorf("no target: %s", got)
	}
}

// A scrape of 100 targets (~6000 series) between two rounds: served from the cached families.
func BenchmarkScrape100Targets(b *testing.B) {
	s := NewState("dev")
	m := matrix()
	for i := 0; i < 100; i++ {
		m.Targets = append(m.Targets, row(fmt.Sprintf("bench/pg-%d/backup", i), fmt.Sprintf("pg-%d", i), "backup", 12,
			"config=warn", "credentials=pass", "endpoint=pass", "bucket=pass", "list=pass", "write=skip", "read=skip", "delete=skip", "multipart=skip", "backups=skip", "wal-archive=pass"))
	}
	s.RoundDone(m, time.Now())
	h := s.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
	}
}
