package cli_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

// serve with files: rounds every --interval, /metrics and the probes, and a clean stop when the
// context ends (a signal), exit 0. The Cluster fails its config check: no network is needed.
func TestServeFilesRoundsAndStops(t *testing.T) {
	s := testenv.StartServe(t, "-f", "../testdata/bad/57-unknown-field-endpointUrl.yaml", "--interval", "1s")
	var body string
	testenv.WaitFor(5*time.Second, func() bool { // three rounds, one a second
		_, body = s.Get(t, "/metrics")
		return strings.Contains(body, "cnpg_preflight_rounds_total 3")
	})
	for _, want := range []string{
		"cnpg_preflight_rounds_total 3",
		`cnpg_preflight_check_status{check="config",cnpg_cluster="pg",namespace="default",role="backup",status="fail",target="default/pg/backup"} 1`,
		`cnpg_preflight_check_status{check="write",cnpg_cluster="pg",namespace="default",role="backup",status="skip",target="default/pg/backup"} 1`,
		`cnpg_preflight_target_failed{cnpg_cluster="pg",namespace="default",role="backup",target="default/pg/backup"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s\n%s", want, body)
		}
	}
	if code, _ := s.Get(t, "/readyz"); code != 200 {
		t.Errorf("readyz: %d", code)
	}
	if code, _ := s.Get(t, "/healthz"); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	if code := s.Stop(); code != 0 {
		t.Errorf("exit %d after the signal", code)
	}
	log := s.Log()
	// the verdict is logged once (it did not change), each round once
	if n := strings.Count(log, "default/pg/backup: backup"); n != 1 || strings.Count(log, "round done: 1 target(s), 1 failing") < 3 || !strings.Contains(log, " stopped: interrupted by SIGTERM") {
		t.Errorf("log:\n%s", log)
	}
	if _, err := http.Get(s.URL + "/metrics"); err == nil {
		t.Error("still serving after the stop")
	}
}
