package integration

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

// The backup client's environment read live (envFrom a Secret with a prefix, valueFrom a
// ConfigMap), the Cluster's ContinuousArchiving message, a recovery from a Backup object, and the
// Job's Role granting exactly those extra objects — against the real API server, compared with
// barman-cloud 3.13 run with the same environment.
func TestKubeEnvStatusAndBackupObject(t *testing.T) {
	t.Parallel()
	k, e, bucket := kubeSetup(t)
	mc := e.rootClient(t)
	ns := k.Namespace(t, "pf-env-")
	user, pass, ep := e.srv.Get("MINIO_ROOT_USER"), e.srv.Get("MINIO_ROOT_PASSWORD"), e.srv.Get("MINIO_ENDPOINT")
	seedBackup(t, mc, bucket, "src", "src")
	testenv.Put(t, mc, bucket, "src/src/wals/0000000100000000/000000010000000000000002.gz", []byte("wal"))
	k.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: aws-env}
stringData: {ACCESS_KEY_ID: %[1]s, SECRET_ACCESS_KEY: %[2]s}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: pg-env}
data: {endpoint: %[3]s}
---
apiVersion: v1
kind: Secret
metadata: {name: unrelated}
stringData: {a: b}
---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg-env}
spec:
  instances: 1
  envFrom:
  - secretRef: {name: aws-env}
    prefix: AWS_
  env:
  - name: AWS_ENDPOINT_URL
    valueFrom: {configMapKeyRef: {name: pg-env, key: endpoint}}
  backup:
    barmanObjectStore:
      destinationPath: s3://%[4]s/env
      s3Credentials: {inheritFromIAMRole: true}
status:
  conditions:
  - type: ContinuousArchiving
    status: "False"
    reason: ContinuousArchivingFailing
    message: "unexpected failure invoking barman-cloud-wal-archive: https://x.blob.core.windows.net/c?sig=SECRETSIG0123456789 exit status 1"
---
apiVersion: v1
kind: Secret
metadata: {name: src-creds}
stringData: {id: %[1]s, secret: %[2]s}
---
apiVersion: postgresql.cnpg.io/v1
kind: Backup
metadata: {name: nightly}
spec: {cluster: {name: src}}
status:
  phase: completed
  backupId: "20260101T000000"
  destinationPath: s3://%[4]s/src
  serverName: src
  endpointURL: %[3]s
  s3Credentials:
    accessKeyId: {name: src-creds, key: id}
    secretAccessKey: {name: src-creds, key: secret}
---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg-restore}
spec:
  instances: 1
  bootstrap:
    recovery:
      backup: {name: nightly}
`, user, pass, ep, bucket))

	live := func(kc string, args ...string) testenv.Result {
		return testenv.Run(t, "", append([]string{"check", "-o", "json", "--read-only", "--kubeconfig", kc, "-n", ns}, args...)...)
	}
	r := live(k.Kubeconfig, "--cluster", "pg-env")
	target := ns + "/pg-env/backup"
	wantStatuses(t, r, target, "config=warn credentials=pass endpoint=pass bucket=pass list=pass wal-archive=pass")
	if r.Code != 0 {
		t.Errorf("exit %d\n%s", r.Code, r.Stderr)
	}
	cfg, cred := r.CheckOf(target, "config"), r.CheckOf(target, "credentials")
	if !strings.Contains(cfg.Message, "the Cluster reports ContinuousArchiving=False (ContinuousArchivingFailing): unexpected failure invoking barman-cloud-wal-archive") || strings.Contains(r.Stdout, "SECRETSIG") {
		t.Errorf("config: %s", cfg.Message)
	}
	if !strings.Contains(cred.Message, "the backup client's environment (AWS_ACCESS_KEY_ID)") || !strings.Contains(cred.Message, "from AWS_ENDPOINT_URL") {
		t.Errorf("credentials: %s", cred.Message)
	}
	if strings.Contains(r.Stdout+r.Stderr, pass) {
		t.Error("the secret key from envFrom leaks")
	}

	// Recovery from the Backup object: exactly its backup ID.
	r = live(k.Kubeconfig, "--cluster", "pg-restore")
	src := ns + "/pg-restore/recovery-source/backup:nightly"
	wantStatuses(t, r, src, "config=pass credentials=pass endpoint=pass bucket=pass backups=pass wal-archive=pass")
	if b := r.CheckOf(src, "backups"); !strings.Contains(b.Message, "backup 20260101T000000 (the Backup object's status.backupId) is complete") {
		t.Errorf("backups: %+v", b)
	}
	// A backup ID the store does not hold fails, as barman-cloud-restore would.
	bj := k.GetJSON(t, ns, "Backup", "nightly")
	bj = regexp.MustCompile(`"resourceVersion":"[0-9]+",?`).ReplaceAllString(bj, "")
	k.Apply(t, ns, strings.Replace(bj, `"20260101T000000"`, `"20260102T000000"`, 1))
	r = live(k.Kubeconfig, "--cluster", "pg-restore")
	if b := r.CheckOf(src, "backups"); b.Status != "fail" || !strings.Contains(b.Message, "backup 20260102T000000 (the Backup object's status.backupId) is not in src/src/base/") {
		t.Errorf("missing backup ID: %+v", b)
	}

	// The Job's Role: exactly the extra objects, by name; with the ConfigMap taken out, the
	// credentials check names the permission and the field.
	j := testenv.Run(t, "", "job", "--kubeconfig", k.Kubeconfig, "--cluster", "pg-env", "-n", ns, "--service-account", "pf")
	if j.Code != 0 || !strings.Contains(j.Stdout, "resources: [configmaps]\n  verbs: [get]\n  resourceNames: [pg-env]") || !strings.Contains(j.Stdout, "resourceNames: [aws-env]") || strings.Contains(j.Stdout, "unrelated") {
		t.Fatalf("job: %d %s\n%s", j.Code, j.Stderr, j.Stdout)
	}
	k.Apply(t, ns, j.Stdout)
	jr := testenv.Run(t, "", "job", "--kubeconfig", k.Kubeconfig, "--cluster", "pg-restore", "-n", ns, "--service-account", "pf-restore")
	if !strings.Contains(jr.Stdout, "resources: [backups]\n  verbs: [get]\n  resourceNames: [nightly]") || !strings.Contains(jr.Stdout, "resourceNames: [src-creds]") {
		t.Errorf("job of the restore: %d %s\n%s", jr.Code, jr.Stderr, jr.Stdout)
	}
	kc := k.TokenKubeconfig(t, k.Token(t, ns, "pf"), ns)
	var res testenv.Result
	for i := 0; i < 50; i++ {
		if res = live(kc, "--cluster", "pg-env"); res.Code == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantStatuses(t, res, target, "config=warn credentials=pass endpoint=pass bucket=pass list=pass wal-archive=pass")
	var role string
	for _, d := range strings.Split(j.Stdout, "---\n") {
		if strings.HasPrefix(d, "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n") {
			role = d
		}
	}
	k.Apply(t, ns, strings.Replace(role, "resources: [configmaps]\n  verbs: [get]\n  resourceNames: [pg-env]", "resources: [configmaps]\n  verbs: [get]\n  resourceNames: [other]", 1))
	want := fmt.Sprintf(`spec.env[0].valueFrom.configMapKeyRef: forbidden: the identity may not get configmaps "pg-env" in namespace %s (RBAC)`, ns)
	for i := 0; i < 50; i++ {
		if res = live(kc, "--cluster", "pg-env"); strings.Contains(res.CheckOf(target, "credentials").Message, want) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c := res.CheckOf(target, "credentials"); c.Status != "fail" || !strings.Contains(c.Message, want) || !strings.Contains(c.Remediation, "configmaps rule") {
		t.Errorf("without the ConfigMap permission: %+v\n%s\n%s", c, res.Stderr, res.Stdout)
	}

	// barman-cloud 3.13 with the same environment (last: the Kubernetes part runs without it).
	// No --endpoint-url: boto3 reads AWS_ENDPOINT_URL.
	code, out := testenv.Barman(t, map[string]string{"AWS_ACCESS_KEY_ID": user, "AWS_SECRET_ACCESS_KEY": pass, "AWS_ENDPOINT_URL": ep},
		"barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "s3://"+bucket+"/env", "pg-env")
	if code != 0 {
		t.Errorf("barman-cloud-check-wal-archive 3.13 with AWS_ENDPOINT_URL: exit %d\n%s", code, out)
	}
	// the Backup's ID is there, the changed one is not
	code, out = testenv.Barman(t, map[string]string{"AWS_ACCESS_KEY_ID": user, "AWS_SECRET_ACCESS_KEY": pass},
		"barman-cloud-backup-show", "--cloud-provider", "aws-s3", "--endpoint-url", ep, "s3://"+bucket+"/src", "src", "20260101T000000")
	if code != 0 {
		t.Errorf("barman-cloud-backup-show 3.13: exit %d\n%s", code, out)
	}
	code, out = testenv.Barman(t, map[string]string{"AWS_ACCESS_KEY_ID": user, "AWS_SECRET_ACCESS_KEY": pass},
		"barman-cloud-backup-show", "--cloud-provider", "aws-s3", "--endpoint-url", ep, "s3://"+bucket+"/src", "src", "20260102T000000")
	if code == 0 {
		t.Errorf("barman-cloud-backup-show 3.13 found a backup that is not there:\n%s", out)
	}
}
