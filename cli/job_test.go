package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestJobManifestsDefaultServiceAccount(t *testing.T) {
	code, out, stderr := runCLI(t, "job", "--cluster", "plugin-recovery", "-n", "db", "-f", "../testdata/clusters", "--image", "img:1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var kinds []string
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var doc map[string]any
		if dec.Decode(&doc) != nil {
			break
		}
		kinds = append(kinds, doc["kind"].(string))
	}
	if strings.Join(kinds, ",") != "Role,RoleBinding,Job" {
		t.Errorf("kinds %v (the Cluster's own ServiceAccount exists: none must be printed)", kinds)
	}
	for _, want := range []string{"name: plugin-recovery\n  namespace: db\n---", "serviceAccountName: plugin-recovery", "resourceNames: [store]", "resourceNames: [s3-creds]", "image: img:1",
		"args: [check, --cluster, plugin-recovery, --namespace, db, --timeout, 1m0s]", "activeDeadlineSeconds: 435", "backoffLimit: 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("manifests lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "list") {
		t.Error("the Role must not grant list")
	}
}

func TestTerminationLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "termination-log")
	os.WriteFile(path, nil, 0o644)
	code, _, _ := runCLIEnv(t, map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "check", "--offline", "-f", "../testdata/bad/57-unknown-field-endpointUrl.yaml", "--termination-log", path)
	b, _ := os.ReadFile(path)
	if code != 1 || !strings.HasPrefix(string(b), "cnpg-preflight FAIL: 1 target(s)") || !strings.Contains(string(b), "default/pg/backup config: ") || len(b) > 4096 {
		t.Errorf("exit %d, termination log:\n%s", code, b)
	}
}

// A hung run cannot block the next ones: the deadlines derive from --timeout.
func TestJobDeadlines(t *testing.T) {
	code, out, stderr := runCLI(t, "job", "--cluster", "plugin-recovery", "-n", "db", "-f", "../testdata/clusters", "--schedule", "0 3 * * *", "--timeout", "30s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"concurrencyPolicy: Forbid", "startingDeadlineSeconds: 375", "      activeDeadlineSeconds: 375", "--timeout, 30s]"} {
		if !strings.Contains(out, want) {
			t.Errorf("CronJob lacks %q:\n%s", want, out)
		}
	}
}

// TestJobRBACSkipsTheSelfEntry: the entry describing the Cluster itself in a distributed topology
// is never probed, so its Secrets are not granted.
func TestJobRBACSkipsTheSelfEntry(t *testing.T) {
	dir := t.TempDir()
	doc := `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: a, namespace: db}
spec:
  backup:
    barmanObjectStore:
      destinationPath: s3://a/
      s3Credentials: {accessKeyId: {name: a-creds, key: id}, secretAccessKey: {name: a-creds, key: secret}}
  replica: {self: a, primary: a, source: b}
  externalClusters:
  - name: a
    barmanObjectStore:
      destinationPath: s3://a/
      s3Credentials: {accessKeyId: {name: peers-view-of-a, key: id}, secretAccessKey: {name: peers-view-of-a, key: secret}}
  - name: b
    barmanObjectStore:
      destinationPath: s3://b/
      s3Credentials: {accessKeyId: {name: b-creds, key: id}, secretAccessKey: {name: b-creds, key: secret}}
`
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(doc), 0o644)
	code, out, stderr := runCLI(t, "job", "--cluster", "a", "-n", "db", "-f", dir, "--image", "img:1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "resourceNames: [a-creds, b-creds]") || strings.Contains(out, "peers-view-of-a") {
		t.Errorf("secrets granted:\n%s", out)
	}
}

// The Job runs as the Cluster's spec.serviceAccountName, its Pod carries the labels
// NetworkPolicies select the database Pods by and none that CNPG's Services select, and the Role
// grants get on exactly the Secrets and ConfigMaps the backup client's environment references.
func TestJobIdentityLabelsAndEnvRBAC(t *testing.T) {
	dir := t.TempDir()
	doc := `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  serviceAccountName: shared-sa
  inheritedMetadata:
    labels: {team: payments, role: primary, cnpg.io/instanceRole: primary, cnpg.io/podRole: instance, app.kubernetes.io/name: pg}
  envFrom:
  - configMapRef: {name: proxy-settings}
  env:
  - name: HTTPS_PROXY
    valueFrom: {secretKeyRef: {name: proxy-creds, key: url}}
  backup:
    barmanObjectStore:
      destinationPath: s3://b/p
      s3Credentials: {inheritFromIAMRole: true}
`
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "job", "--cluster", "pg", "-n", "db", "-f", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"serviceAccountName: shared-sa", "resources: [secrets]\n  verbs: [get]\n  resourceNames: [proxy-creds]", "resources: [configmaps]\n  verbs: [get]\n  resourceNames: [proxy-settings]",
		"subjects:\n- kind: ServiceAccount\n  name: shared-sa"} {
		if !strings.Contains(out, want) {
			t.Errorf("manifests lack %q:\n%s", want, out)
		}
	}
	var labels map[string]string
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var doc struct {
			Kind string
			Spec struct {
				Template struct {
					Metadata struct{ Labels map[string]string }
				}
			}
		}
		if dec.Decode(&doc) != nil {
			break
		}
		if doc.Kind == "Job" {
			labels = doc.Spec.Template.Metadata.Labels
		}
	}
	if labels["cnpg.io/cluster"] != "pg" || labels["team"] != "payments" || labels["app.kubernetes.io/name"] != "pg" {
		t.Errorf("pod labels %v", labels)
	}
	// CNPG's Services: -rw, -ro, -r (current and legacy selectors)
	selectors := []map[string]string{
		{"cnpg.io/cluster": "pg", "cnpg.io/instanceRole": "primary"},
		{"cnpg.io/cluster": "pg", "cnpg.io/instanceRole": "replica"},
		{"cnpg.io/cluster": "pg", "role": "primary"},
		{"cnpg.io/cluster": "pg", "role": "replica"},
		{"cnpg.io/cluster": "pg", "cnpg.io/podRole": "instance"},
	}
	for _, sel := range selectors {
		match := true
		for k, v := range sel {
			match = match && labels[k] == v
		}
		if match {
			t.Errorf("the Service selector %v matches the Job's Pod %v", sel, labels)
		}
	}
}
