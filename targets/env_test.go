package targets

import (
	"context"
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/all"
)

const envDoc = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  envFrom:
  - configMapRef: {name: proxy}
  - secretRef: {name: aws}
    prefix: AWS_
  - secretRef: {name: absent, optional: true}
  env:
  - {name: NO_PROXY, value: .svc}
  - name: AWS_DEFAULT_REGION
    valueFrom: {configMapKeyRef: {name: proxy, key: region}}
  - name: HTTP_PROXY
    valueFrom: {secretKeyRef: {name: aws, key: PROXY_URL, optional: true}}
  - name: POD_IP
    valueFrom: {fieldRef: {fieldPath: status.podIP}}
  backup:
    barmanObjectStore:
      destinationPath: s3://b/p
      s3Credentials: {inheritFromIAMRole: true}
  plugins:
  - name: barman-cloud.cloudnative-pg.io
    parameters: {barmanObjectName: store}
---
apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: store, namespace: db}
spec:
  configuration:
    destinationPath: s3://b/q
    s3Credentials: {inheritFromIAMRole: true}
  instanceSidecarConfiguration:
    env:
    - {name: NO_PROXY, value: ignored}
    - {name: AWS_REQUEST_CHECKSUM_CALCULATION, value: when_required}
    - name: AWS_ENDPOINT_URL
      valueFrom: {secretKeyRef: {name: aws, key: nope}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: proxy, namespace: db}
data: {HTTPS_PROXY: "http://proxy:3128", region: eu-west-3, "bad name": x}
---
apiVersion: v1
kind: Secret
metadata: {name: aws, namespace: db}
stringData: {ROLE_ARN: arn, REGION: us-west-1}
`

// The backup client's environment, in-tree (envFrom, then env) and in the plugin's sidecar (the
// instance container's env first, then the ObjectStore's variables it does not set).
func TestEnvResolution(t *testing.T) {
	set := manifest.NewSet()
	if err := set.Add("env.yaml", []byte(envDoc), "db"); err != nil {
		t.Fatal(err)
	}
	ts := Build(set, func(ns string) providers.SecretLookup { return SecretsFromSet(set, ns) }, all.Registry(all.Settings{}))
	got := map[string]map[string]string{}
	fails := map[string]string{}
	for _, tg := range ts {
		pt := tg.ProviderTarget()
		var msgs []string
		for _, f := range pt.LoadEnv(context.Background()) {
			msgs = append(msgs, f.String())
		}
		got[tg.ID], fails[tg.ID] = pt.Env, strings.Join(msgs, "; ")
	}
	in := got["db/pg/backup"]
	want := map[string]string{"HTTPS_PROXY": "http://proxy:3128", "AWS_ROLE_ARN": "arn", "AWS_REGION": "us-west-1", "NO_PROXY": ".svc", "AWS_DEFAULT_REGION": "eu-west-3", "region": "eu-west-3"}
	for k, v := range want {
		if in[k] != v {
			t.Errorf("in-tree %s = %q, want %q (%v)", k, in[k], v, in)
		}
	}
	if _, ok := in["bad name"]; ok || in["HTTP_PROXY"] != "" || fails["db/pg/backup"] != "" {
		t.Errorf("in-tree: %v %s", in, fails["db/pg/backup"])
	}
	pl := got["db/pg/backup/plugin"]
	if pl["NO_PROXY"] != ".svc" || pl["AWS_REQUEST_CHECKSUM_CALCULATION"] != "when_required" || pl["HTTPS_PROXY"] != "" || pl["AWS_ROLE_ARN"] != "" {
		t.Errorf("sidecar env: %v", pl)
	}
	if f := fails["db/pg/backup/plugin"]; !strings.Contains(f, "ObjectStore store: spec.instanceSidecarConfiguration.env[2].valueFrom.secretKeyRef: Secret db/aws has no key \"nope\"") {
		t.Errorf("missing key: %s", f)
	}
	var warned bool
	for _, tg := range ts {
		for _, f := range tg.Findings {
			warned = warned || strings.Contains(f.String(), "NO_PROXY is also set in the Cluster's spec.env")
		}
	}
	if !warned {
		t.Error("no warning for a sidecar variable the instance container overrides")
	}
	secrets, cms := EnvRefs(set, set.Clusters[0], ts)
	if strings.Join(secrets, ",") != "absent,aws" || strings.Join(cms, ",") != "proxy" {
		t.Errorf("refs: %v %v", secrets, cms)
	}
	// A missing ConfigMap that is not optional keeps the container from starting.
	delete(set.ConfigMaps, "db/proxy")
	ts = Build(set, func(ns string) providers.SecretLookup { return SecretsFromSet(set, ns) }, all.Registry(all.Settings{}))
	fs := ts[0].ProviderTarget().LoadEnv(context.Background())
	if len(fs) != 2 || fs[0].Field != "spec.envFrom[0].configMapRef" || !strings.Contains(fs[0].Msg, "ConfigMap db/proxy not found") || fs[1].Field != "spec.env[1].valueFrom.configMapKeyRef" {
		t.Errorf("missing ConfigMap: %v", fs)
	}
}

// Identity and reload findings: the in-tree endpointCA Secret without cnpg.io/reload warns (not a
// credential Secret, not the plugin's); Azure workload identity through the plugin warns; a
// Cluster with spec.serviceAccountName gets no serviceAccountTemplate annotation warning.
func TestIdentityAndReloadFindings(t *testing.T) {
	doc := `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  serviceAccountName: shared
  backup:
    barmanObjectStore:
      destinationPath: s3://b/p
      endpointURL: https://s3.local
      endpointCA: {name: ca, key: ca.crt}
      s3Credentials: {inheritFromIAMRole: true}
  plugins:
  - name: barman-cloud.cloudnative-pg.io
    parameters: {barmanObjectName: az}
---
apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: az, namespace: db}
spec:
  configuration:
    destinationPath: https://acct.blob.core.windows.net/c/p
    endpointCA: {name: ca, key: ca.crt}
    azureCredentials: {inheritFromAzureAD: true}
---
apiVersion: v1
kind: Secret
metadata: {name: ca, namespace: db}
stringData: {ca.crt: x}
`
	set := manifest.NewSet()
	if err := set.Add("f.yaml", []byte(doc), "db"); err != nil {
		t.Fatal(err)
	}
	find := func() map[string]string {
		out := map[string]string{}
		for _, tg := range Build(set, func(ns string) providers.SecretLookup { return SecretsFromSet(set, ns) }, all.Registry(all.Settings{})) {
			var s []string
			for _, f := range tg.Findings {
				s = append(s, f.String())
			}
			out[tg.ID] = strings.Join(s, "\n")
		}
		return out
	}
	fs := find()
	if !strings.Contains(fs["db/pg/backup"], "spec.backup.barmanObjectStore.endpointCA: the Secret ca has no cnpg.io/reload label") {
		t.Errorf("in-tree: %s", fs["db/pg/backup"])
	}
	if strings.Contains(fs["db/pg/backup"], "serviceAccountTemplate has no") {
		t.Errorf("annotation warning with serviceAccountName: %s", fs["db/pg/backup"])
	}
	pl := fs["db/pg/backup/plugin"]
	if strings.Contains(pl, "cnpg.io/reload") || !strings.Contains(pl, "azureCredentials.inheritFromAzureAD: azureCredentials.inheritFromAzureAD through the Barman Cloud plugin: current Barman Cloud plugin releases do not project") {
		t.Errorf("plugin: %s", pl)
	}
	set.Secret("db", "ca").Meta.Labels = map[string]string{ReloadLabel: "true"}
	if fs := find(); strings.Contains(fs["db/pg/backup"], "cnpg.io/reload") {
		t.Errorf("labelled: %s", fs["db/pg/backup"])
	}
}

// What the live objects report: the ContinuousArchiving condition's message (redacted) and the
// plugin's serverRecoveryWindow.
func TestStatusFindings(t *testing.T) {
	doc := `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  plugins:
  - name: barman-cloud.cloudnative-pg.io
    isWALArchiver: true
    parameters: {barmanObjectName: store, serverName: srv}
status:
  conditions:
  - type: ContinuousArchiving
    status: "False"
    reason: ContinuousArchivingFailing
    message: "unexpected failure: https://acct.blob.core.windows.net/c?sv=2022&sig=SECRETSIG123 \x1b[31m403"
---
apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: store, namespace: db}
spec:
  configuration:
    destinationPath: s3://b/p
    s3Credentials: {inheritFromIAMRole: true}
status:
  serverRecoveryWindow:
    srv: {firstRecoverabilityPoint: "2026-11-01T00:00:00Z", lastSuccessfulBackupTime: "2026-11-30T00:00:00Z", lastFailedBackupTime: "2026-12-01T00:00:00Z"}
`
	set := manifest.NewSet()
	if err := set.Add("f.yaml", []byte(doc), "db"); err != nil {
		t.Fatal(err)
	}
	ts := Build(set, func(ns string) providers.SecretLookup { return SecretsFromSet(set, ns) }, all.Registry(all.Settings{}))
	var fs []string
	for _, f := range ts[0].Findings {
		fs = append(fs, f.String())
	}
	all := strings.Join(fs, "\n")
	if !strings.Contains(all, "the Cluster reports ContinuousArchiving=False (ContinuousArchivingFailing): unexpected failure") || strings.Contains(all, "SECRETSIG123") || strings.Contains(all, "\x1b") {
		t.Errorf("condition: %s", all)
	}
	if !strings.Contains(all, `ObjectStore store: status.serverRecoveryWindow[srv]: the last backup failed (2026-12-01T00:00:00Z)`) {
		t.Errorf("recovery window: %s", all)
	}
	if n := strings.Join(ts[0].Notes, ";"); !strings.Contains(n, `the plugin reports for server "srv": first recoverability point 2026-11-01T00:00:00Z, last successful backup 2026-11-30T00:00:00Z`) {
		t.Errorf("notes: %s", n)
	}
}

// A Cluster bootstrapped from a Backup object restores exactly its backup ID from the destination
// its status records; ScheduledBackups left on the in-tree method after the move to the plugin warn.
func TestBackupObjectAndMethods(t *testing.T) {
	doc := `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  bootstrap:
    recovery:
      backup: {name: nightly}
  plugins:
  - name: barman-cloud.cloudnative-pg.io
    isWALArchiver: true
    parameters: {barmanObjectName: store}
---
apiVersion: postgresql.cnpg.io/v1
kind: Backup
metadata: {name: nightly, namespace: db}
spec: {cluster: {name: old}}
status:
  phase: completed
  backupId: 20261201T000000
  destinationPath: s3://b/old
  serverName: old
  endpointURL: http://minio:9000
  s3Credentials:
    accessKeyId: {name: creds, key: id}
    secretAccessKey: {name: creds, key: secret}
---
apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata: {name: daily, namespace: db}
spec: {cluster: {name: pg}, schedule: "0 0 0 * * *"}
---
apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata: {name: daily-plugin, namespace: db}
spec: {cluster: {name: pg}, method: plugin, pluginConfiguration: {name: barman-cloud.cloudnative-pg.io}}
`
	set := manifest.NewSet()
	if err := set.Add("f.yaml", []byte(doc), "db"); err != nil {
		t.Fatal(err)
	}
	ts := Build(set, func(ns string) providers.SecretLookup { return SecretsFromSet(set, ns) }, all.Registry(all.Settings{}))
	var src *Target
	var fs []string
	for _, tg := range ts {
		if tg.ID == "db/pg/recovery-source/backup:nightly" {
			src = tg
		}
		for _, f := range tg.Findings {
			fs = append(fs, f.String())
		}
	}
	if src == nil || src.BackupID != "20261201T000000" || src.ServerName != "old" || src.Conf.DestinationPath != "s3://b/old" || !src.NeedsBackups() || !src.ReadOnly() {
		t.Fatalf("backup target: %+v", src)
	}
	all := strings.Join(fs, "\n")
	if !strings.Contains(all, "ScheduledBackup daily: spec.method: ScheduledBackup daily uses method barmanObjectStore") || strings.Contains(all, "daily-plugin") {
		t.Errorf("method findings: %s", all)
	}
}
