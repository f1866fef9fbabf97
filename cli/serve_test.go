package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// syncBuffer is a bytes.Buffer the serve loop and the test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// serve with files: rounds every --interval, /metrics and the probes, and a clean stop when the
// context ends (a signal), exit 0. The Cluster fails its config check: no network is needed.
func TestServeFilesRoundsAndStops(t *testing.T) {
	var errb syncBuffer
	f := NewFactory(&IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: &errb, Getenv: func(string) string { return "" }})
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan int)
	go func() {
		done <- MainContext(ctx, f, []string{"serve", "-f", "../testdata/bad/57-unknown-field-endpointUrl.yaml", "--listen", "127.0.0.1:0", "--interval", "1s"})
	}()
	addr := regexp.MustCompile(`on (127\.0\.0\.1:\d+);`)
	var base string
	for i := 0; i < 100 && base == ""; i++ {
		if m := addr.FindStringSubmatch(errb.String()); m != nil {
			base = "http://" + m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if base == "" {
		t.Fatalf("no listen address logged:\n%s", errb.String())
	}
	var body string
	for i := 0; i < 100; i++ { // three rounds, one a second
		_, body = httpGet(t, base+"/metrics")
		if strings.Contains(body, "cnpg_preflight_rounds_total 3") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	if code, _ := httpGet(t, base+"/readyz"); code != 200 {
		t.Errorf("readyz: %d", code)
	}
	if code, _ := httpGet(t, base+"/healthz"); code != 200 {
		t.Errorf("healthz: %d", code)
	}
	cancel(context.Canceled)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after the signal", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	log := errb.String()
	// the verdict is logged once (it did not change), each round once
	if n := strings.Count(log, "default/pg/backup: backup"); n != 1 || strings.Count(log, "round done: 1 target(s), 1 failing") < 3 || !strings.Contains(log, " stopped: ") {
		t.Errorf("log:\n%s", log)
	}
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Error("still serving after the stop")
	}
}

func TestEventNote(t *testing.T) {
	tg := &report.Target{ID: "db/pg/backup", Role: "backup", DestinationPath: "s3://b/p", ServerName: "pg", Checks: []report.Check{
		{ID: "bucket", Status: report.Fail, Message: "HeadBucket: 403 Forbidden", Remediation: "grant s3:ListBucket on arn:aws:s3:::b"},
		{ID: "list", Status: report.Skip, Message: "skipped: bucket did not pass"},
		{ID: "config", Status: report.Warn, Message: "deprecated"},
	}}
	if got, want := EventNote(tg), "backup s3://b/p (serverName pg): bucket failed: HeadBucket: 403 Forbidden Fix: grant s3:ListBucket on arn:aws:s3:::b"; got != want {
		t.Errorf("failed:\n got %s\nwant %s", got, want)
	}
	tg.Checks[0].Status = report.Pass
	tg.Leftovers = []string{"p/pg/probe-1"}
	if got, want := EventNote(tg), "backup s3://b/p (serverName pg): probe object left behind: p/pg/probe-1 Fix: delete it"; got != want {
		t.Errorf("leftover:\n got %s\nwant %s", got, want)
	}
	tg.Leftovers = nil
	if got, want := EventNote(tg), "backup s3://b/p (serverName pg): no check failed (1 warning(s))"; got != want {
		t.Errorf("passed:\n got %s\nwant %s", got, want)
	}
}

func kindsOf(t *testing.T, out string) []string {
	t.Helper()
	var kinds []string
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err == io.EOF {
			return kinds
		} else if err != nil {
			t.Fatalf("not YAML: %v\n%s", err, out)
		}
		kinds = append(kinds, doc["kind"].(string)+"/"+doc["metadata"].(map[string]any)["name"].(string))
	}
}

func TestServeManifests(t *testing.T) {
	code, out, stderr := runCLI(t, "job", "--serve", "-n", "db", "-f", "../testdata/clusters", "--image", "img:1", "--service-monitor", "--interval", "5m", "--listen", ":9187")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := "ServiceAccount/cnpg-preflight,Role/cnpg-preflight-serve,RoleBinding/cnpg-preflight-serve,Deployment/cnpg-preflight-serve,Service/cnpg-preflight-serve,ServiceMonitor/cnpg-preflight-serve"
	if got := strings.Join(kindsOf(t, out), ","); got != want {
		t.Errorf("documents\n got %s\nwant %s", got, want)
	}
	for _, want := range []string{
		"resources: [clusters]\n  verbs: [list]\n",
		"resources: [objectstores]\n  verbs: [get]\n",
		"resources: [events]\n  verbs: [create, list, patch]\n",
		"args: [serve, --namespace, db, --listen, \":9187\", --interval, 5m0s]",
		"containerPort: 9187", "replicas: 1", "runAsNonRoot: true", "readOnlyRootFilesystem: true", "limits: {memory: 256Mi}",
		"path: /readyz", "path: /healthz", "honorLabels: true",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("manifests lack %q:\n%s", want, out)
		}
	}
	// Secrets: get by name, exactly those the Clusters of the namespace reference.
	set, err := manifest.Load([]string{"../testdata/clusters"}, nil, "db")
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]bool{}
	for _, c := range set.Clusters {
		if c.Meta.Namespace == "db" {
			for _, s := range NamesFor(c, set, testFactoryRegistry()).Secrets {
				secrets[s] = true
			}
		}
	}
	if line := "  resourceNames: [" + strings.Join(sorted(secrets), ", ") + "]\n"; len(secrets) == 0 || !strings.Contains(out, "resources: [secrets]\n  verbs: [get]\n"+line) {
		t.Errorf("secrets rule is not %q:\n%s", line, out)
	}

	// One Cluster: get on it by name, the Cluster's own ServiceAccount (not printed), no ServiceMonitor.
	code, out, stderr = runCLI(t, "job", "--serve", "--cluster", "plugin-recovery", "-n", "db", "-f", "../testdata/clusters", "--write-probes")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want = "Role/cnpg-preflight-serve-plugin-recovery,RoleBinding/cnpg-preflight-serve-plugin-recovery,Deployment/cnpg-preflight-serve-plugin-recovery,Service/cnpg-preflight-serve-plugin-recovery"
	if got := strings.Join(kindsOf(t, out), ","); got != want {
		t.Errorf("documents\n got %s\nwant %s", got, want)
	}
	for _, want := range []string{"verbs: [get]\n  resourceNames: [plugin-recovery]\n", "resourceNames: [s3-creds]", "serviceAccountName: plugin-recovery",
		"args: [serve, --namespace, db, --cluster, plugin-recovery, --listen, \":8080\", --interval, 15m0s, --write-probes]"} {
		if !strings.Contains(out, want) {
			t.Errorf("manifests lack %q:\n%s", want, out)
		}
	}
}

func testFactoryRegistry() *providers.Registry {
	f, _, _ := testFactory("", nil)
	return f.Registry
}

func TestJobWithEvents(t *testing.T) {
	for _, schedule := range []string{"", "@daily"} {
		args := []string{"job", "--cluster", "plugin-recovery", "-n", "db", "-f", "../testdata/clusters", "--events", "--service-account", "pf"}
		if schedule != "" {
			args = append(args, "--schedule", schedule)
		}
		code, out, stderr := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		last := "Job/cnpg-preflight-plugin-recovery"
		if schedule != "" {
			last = "CronJob/cnpg-preflight-plugin-recovery"
		}
		want := "ServiceAccount/pf,Role/cnpg-preflight-plugin-recovery,RoleBinding/cnpg-preflight-plugin-recovery,Role/cnpg-preflight-plugin-recovery-events,RoleBinding/cnpg-preflight-plugin-recovery-events," + last
		if got := strings.Join(kindsOf(t, out), ","); got != want {
			t.Errorf("documents\n got %s\nwant %s", got, want)
		}
		for _, want := range []string{"args: [check, --events, --cluster, plugin-recovery, --namespace, db]", "resources: [events]\n  verbs: [create, list, patch]\n", "- kind: ServiceAccount\n  name: pf\n  namespace: db\n---\napiVersion: batch/v1"} {
			if !strings.Contains(out, want) {
				t.Errorf("manifests lack %q:\n%s", want, out)
			}
		}
	}
}
