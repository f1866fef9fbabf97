package cli

import (
	"io"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

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
		for _, want := range []string{"args: [check, --events, --cluster, plugin-recovery, --namespace, db, --timeout, 1m0s]", "resources: [events]\n  verbs: [create, list, patch]\n", "- kind: ServiceAccount\n  name: pf\n  namespace: db\n---\napiVersion: batch/v1"} {
			if !strings.Contains(out, want) {
				t.Errorf("manifests lack %q:\n%s", want, out)
			}
		}
	}
}
