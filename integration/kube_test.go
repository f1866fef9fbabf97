package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

// kubeCluster is an in-tree S3 Cluster plus its Secret, for a namespace of the real API server.
func kubeCluster(name, bucket, endpoint, key, secret, extra string) string {
	return fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: %s}
spec:
  instances: 1
  backup:
    barmanObjectStore:
      destinationPath: s3://%s/kube
      endpointURL: %s
      s3Credentials:
        accessKeyId: {name: %s-creds, key: ACCESS_KEY_ID}
        secretAccessKey: {name: %s-creds, key: ACCESS_SECRET_KEY}
%s---
apiVersion: v1
kind: Secret
metadata: {name: %s-creds}
stringData: {ACCESS_KEY_ID: %s, ACCESS_SECRET_KEY: %s}
`, name, bucket, endpoint, name, name, extra, name, key, secret)
}

func kubeSetup(t *testing.T) (*testenv.Kube, s3env, string) {
	e := minioEnv(t)
	k := testenv.LoadKube(t, e.srv)
	mc := e.rootClient(t)
	return k, e, testenv.NewBucket(t, mc)
}

// The admin identity reads one Cluster, a namespace, and all namespaces.
func TestKubeLiveInput(t *testing.T) {
	t.Parallel()
	k, e, bucket := kubeSetup(t)
	user, pass, ep := e.srv.Get("MINIO_ROOT_USER"), e.srv.Get("MINIO_ROOT_PASSWORD"), e.srv.Get("MINIO_ENDPOINT")
	ns1, ns2 := k.Namespace(t, "pf-a-"), k.Namespace(t, "pf-b-")
	k.Apply(t, ns1, kubeCluster("pg-one", bucket, ep, user, pass, ""))
	k.Apply(t, ns1, kubeCluster("pg-two", bucket, ep, user, pass, ""))
	// a plugin-wired Cluster in the second namespace
	k.Apply(t, ns2, fmt.Sprintf(`apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: store}
spec:
  configuration:
    destinationPath: s3://%s/plugin
    endpointURL: %s
    s3Credentials:
      accessKeyId: {name: store-creds, key: id}
      secretAccessKey: {name: store-creds, key: secret}
---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg-plugin}
spec:
  instances: 1
  plugins:
  - name: barman-cloud.cloudnative-pg.io
    isWALArchiver: true
    parameters: {barmanObjectName: store}
---
apiVersion: v1
kind: Secret
metadata: {name: store-creds}
stringData: {id: %s, secret: %s}
`, bucket, ep, user, pass))
	live := func(args ...string) testenv.Result {
		return testenv.Run(t, "", append([]string{"check", "-o", "json", "--kubeconfig", k.Kubeconfig}, args...)...)
	}
	r := live("--cluster", "pg-one", "-n", ns1)
	wantStatuses(t, r, ns1+"/pg-one/backup", allPass)
	if r.Code != 0 || len(r.Matrix.Targets) != 1 {
		t.Errorf("--cluster: exit %d, %d targets\n%s", r.Code, len(r.Matrix.Targets), r.Stderr)
	}
	r = live("-n", ns1)
	if r.Matrix == nil || len(r.Matrix.Targets) != 2 || r.Code != 0 {
		t.Fatalf("-n: %s %s", r.Stdout, r.Stderr)
	}
	r = live("-n", ns2)
	wantStatuses(t, r, ns2+"/pg-plugin/backup", strings.Replace(allPass, "config=warn", "config=pass", 1))
	r = live("-A")
	ids := map[string]bool{}
	for _, tg := range r.Matrix.Targets {
		ids[tg.ID] = true
	}
	for _, id := range []string{ns1 + "/pg-one/backup", ns1 + "/pg-two/backup", ns2 + "/pg-plugin/backup"} {
		if !ids[id] {
			t.Errorf("-A lacks %s", id)
		}
	}
	// API errors are one precise line, exit 2.
	r = live("--cluster", "nope", "-n", ns1)
	if r.Code != 2 || strings.TrimSpace(r.Stderr) != fmt.Sprintf(`cnpg-preflight: clusters.postgresql.cnpg.io "nope" not found in namespace %s`, ns1) {
		t.Errorf("missing Cluster: exit %d %q", r.Code, r.Stderr)
	}
	bad := k.TokenKubeconfig(t, "x", ns1)
	r = testenv.Run(t, "", "check", "--kubeconfig", bad, "--cluster", "pg-one", "--server-unused")
	if r.Code != 2 {
		t.Errorf("unknown flag: exit %d", r.Code)
	}
	r = testenv.Run(t, "", "check", "--kubeconfig", bad, "--cluster", "pg-one")
	if r.Code != 2 || !strings.Contains(r.Stderr, "unauthorized") {
		t.Errorf("bad token: exit %d %q", r.Code, r.Stderr)
	}
}

// The ServiceAccount and Role that `cnpg-preflight job` prints are enough, and exactly enough.
func TestKubeJobRBACIsLeastPrivilege(t *testing.T) {
	t.Parallel()
	k, e, bucket := kubeSetup(t)
	ns := k.Namespace(t, "pf-job-")
	k.Apply(t, ns, kubeCluster("pg-job", bucket, e.srv.Get("MINIO_ENDPOINT"), e.srv.Get("MINIO_ROOT_USER"), e.srv.Get("MINIO_ROOT_PASSWORD"),
		"  serviceAccountTemplate:\n    metadata:\n      annotations: {eks.amazonaws.com/role-arn: \"arn:aws:iam::123456789012:role/pg\"}\n"))
	k.Apply(t, ns, "apiVersion: v1\nkind: Secret\nmetadata: {name: unrelated}\nstringData: {a: b}\n")
	r := testenv.Run(t, "", "job", "--kubeconfig", k.Kubeconfig, "--cluster", "pg-job", "-n", ns, "--service-account", "preflight")
	if r.Code != 0 {
		t.Fatalf("job: %d %s", r.Code, r.Stderr)
	}
	out := r.Stdout
	if !strings.Contains(out, "resourceNames: [pg-job-creds]") || strings.Contains(out, "unrelated") || !strings.Contains(out, `"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/pg"`) {
		t.Errorf("manifests:\n%s", out)
	}
	// Apply everything, the Job too: the API server validates it (no controller-manager runs it
	// here), deadlines included.
	docs := strings.Split(out, "---\n")
	k.Apply(t, ns, out)
	if job := k.GetJSON(t, ns, "Job", "cnpg-preflight-pg-job"); !strings.Contains(job, `"activeDeadlineSeconds":435`) || !strings.Contains(job, `"backoffLimit":0`) {
		t.Errorf("Job as stored: %s", job)
	}
	cron := testenv.Run(t, "", "job", "--kubeconfig", k.Kubeconfig, "--cluster", "pg-job", "-n", ns, "--service-account", "preflight", "--schedule", "0 3 * * *", "--timeout", "30s")
	k.Apply(t, ns, cron.Stdout)
	if cj := k.GetJSON(t, ns, "CronJob", "cnpg-preflight-pg-job"); !strings.Contains(cj, `"startingDeadlineSeconds":375`) || !strings.Contains(cj, `"activeDeadlineSeconds":375`) {
		t.Errorf("CronJob as stored: %s", cj)
	}
	role := ""
	for _, d := range docs {
		if strings.HasPrefix(d, "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n") {
			role = d
		}
	}
	kc := k.TokenKubeconfig(t, k.Token(t, ns, "preflight"), ns)
	var res testenv.Result
	for i := 0; i < 50; i++ { // RBAC takes a moment to apply
		res = testenv.Run(t, "", "check", "-o", "json", "--kubeconfig", kc, "--cluster", "pg-job")
		if res.Code == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantStatuses(t, res, ns+"/pg-job/backup", allPass)
	// Without the Secret in resourceNames, the run fails naming the missing permission.
	k.Apply(t, ns, strings.Replace(role, "resourceNames: [pg-job-creds]", "resourceNames: [unrelated]", 1))
	want := fmt.Sprintf(`forbidden: the identity may not get secrets "pg-job-creds" in namespace %s (RBAC)`, ns)
	for i := 0; i < 50; i++ {
		res = testenv.Run(t, "", "check", "-o", "json", "--kubeconfig", kc, "--cluster", "pg-job")
		if strings.Contains(res.CheckOf(ns+"/pg-job/backup", "credentials").Message, want) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c := res.CheckOf(ns+"/pg-job/backup", "credentials"); c.Status != "fail" || !strings.Contains(c.Message, want) || res.Code != 1 {
		t.Errorf("credentials without the Secret permission: exit %d %+v", res.Code, c)
	}
	// Without get on the Cluster: exit 2 naming verb, resource and namespace.
	k.Apply(t, ns, strings.Replace(role, "resourceNames: [pg-job]", "resourceNames: [other]", 1))
	for i := 0; i < 50; i++ {
		res = testenv.Run(t, "", "check", "--kubeconfig", kc, "--cluster", "pg-job")
		if res.Code == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasPrefix(res.Stderr, fmt.Sprintf(`cnpg-preflight: forbidden: the identity may not get clusters.postgresql.cnpg.io "pg-job" in namespace %s (RBAC)`, ns)) {
		t.Errorf("without get on the Cluster: exit %d %q", res.Code, res.Stderr)
	}
}

// A Cluster whose status says it archives expects a non-empty archive; a new Cluster does not.
func TestKubeArchivingStatus(t *testing.T) {
	t.Parallel()
	k, e, bucket := kubeSetup(t)
	mc := e.rootClient(t)
	ns := k.Namespace(t, "pf-arch-")
	user, pass, ep := e.srv.Get("MINIO_ROOT_USER"), e.srv.Get("MINIO_ROOT_PASSWORD"), e.srv.Get("MINIO_ENDPOINT")
	testenv.Put(t, mc, bucket, "kube/pg-live/wals/0000000100000000/000000010000000000000004.gz", []byte("wal"))
	status := "status:\n  timelineID: %d\n  firstRecoverabilityPoint: \"2026-11-25T10:00:00Z\"\n  conditions:\n  - {type: ContinuousArchiving, status: \"True\", reason: ContinuousArchivingSuccess}\n"
	doc := kubeCluster("pg-live", bucket, ep, user, pass, "") + "---\n"
	k.Apply(t, ns, strings.Replace(doc, "spec:\n", fmt.Sprintf(status, 1)+"spec:\n", 1))
	r := testenv.Run(t, "", "check", "-o", "json", "--kubeconfig", k.Kubeconfig, "--cluster", "pg-live", "-n", ns)
	if w := r.CheckOf(ns+"/pg-live/backup", "wal-archive"); w.Status != "pass" || !strings.Contains(w.Message, "archive in use by this Cluster") {
		t.Errorf("archiving Cluster: %+v", w)
	}
	// A new Cluster (no status) pointed at the same archive fails the empty-archive rule.
	k.Apply(t, ns, strings.Replace(strings.Replace(doc, "metadata: {name: pg-live}", "metadata: {name: pg-new}", 1), "s3Credentials:", "serverName: pg-live\n      s3Credentials:", 1))
	r = testenv.Run(t, "", "check", "-o", "json", "--kubeconfig", k.Kubeconfig, "--cluster", "pg-new", "-n", ns)
	if w := r.CheckOf(ns+"/pg-new/backup", "wal-archive"); w.Status != "fail" || !strings.Contains(w.Message, "Expected empty archive") {
		t.Errorf("new Cluster on a used archive: %+v", w)
	}
	// The archive is ahead of the Cluster's timeline: another cluster writes there.
	testenv.Put(t, mc, bucket, "kube/pg-live/wals/0000000200000000/000000020000000000000005.gz", []byte("wal"))
	r = testenv.Run(t, "", "check", "-o", "json", "--kubeconfig", k.Kubeconfig, "--cluster", "pg-live", "-n", ns)
	if w := r.CheckOf(ns+"/pg-live/backup", "wal-archive"); w.Status != "fail" || !strings.Contains(w.Message, "another cluster writes there") {
		t.Errorf("archive ahead of the timeline: %+v", w)
	}
}

func TestKubeUnreachable(t *testing.T) {
	t.Parallel()
	srv := testenv.Load(t)
	k := testenv.LoadKube(t, srv)
	k2 := *k
	k2.Server = "https://127.0.0.1:1"
	kc := k2.TokenKubeconfig(t, "x", "default")
	r := testenv.Run(t, "", "check", "--kubeconfig", kc, "-n", "default")
	if r.Code != 2 || !strings.HasPrefix(r.Stderr, "cnpg-preflight: cannot reach the Kubernetes API server at https://127.0.0.1:1: ") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Errorf("unreachable: exit %d %q", r.Code, r.Stderr)
	}
}
