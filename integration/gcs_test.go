package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

func gcsCluster(bucket, creds, secretJSON, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg, namespace: db}\nspec:\n  backup:\n    barmanObjectStore:\n      destinationPath: gs://%s/pg-backups/\n      googleCredentials:\n%s\n", bucket, creds)
	if extra != "" {
		b.WriteString(extra + "\n")
	}
	fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Secret\nmetadata: {name: gcs, namespace: db}\nstringData:\n  gcsCredentials: %q\n  ca.crt: not-a-cert\n", secretJSON)
	return b.String()
}

const saCreds = "        applicationCredentials: {name: gcs, key: gcsCredentials}"

// The GCS emulator checks no credentials: credential failures are tested at the resolution level.
func TestGCSServiceAccount(t *testing.T) {
	t.Parallel()
	srv := testenv.Load(t)
	g := testenv.NewGCSBucket(t, srv.Get("GCS_EMULATOR_HOST"))
	g.Put(t, "other/keep.txt", []byte("keep"))
	sa := testenv.ServiceAccountJSON(t, "backup@test.iam.gserviceaccount.com")
	before := g.Snapshot(t)
	r := testenv.Check(t, gcsCluster(g.Bucket, saCreds, sa, ""))
	wantStatuses(t, r, backupTarget, allPass)
	if cc := r.CheckOf(backupTarget, "credentials"); !strings.Contains(cc.Message, "backup@test.iam.gserviceaccount.com") {
		t.Errorf("credentials: %+v", cc)
	}
	assertClean(t, r, "PRIVATE KEY")
	if d := testenv.Diff(before, g.Snapshot(t)); d != "" {
		t.Errorf("the run changed the bucket:\n%s", d)
	}

	g.Put(t, "pg-backups/pg/wals/0000000100000000/000000010000000000000009.gz", []byte("wal"))
	r = testenv.Check(t, gcsCluster(g.Bucket, saCreds, sa, ""))
	if wc := r.CheckOf(backupTarget, "wal-archive"); wc.Status != "fail" || !strings.Contains(wc.Message, "Expected empty archive") {
		t.Errorf("wal-archive: %+v", wc)
	}
}

func TestGCSCredentialShapes(t *testing.T) {
	t.Parallel()
	srv := testenv.Load(t)
	g := testenv.NewGCSBucket(t, srv.Get("GCS_EMULATOR_HOST"))
	cases := []struct{ name, creds, json, want string }{
		{"not JSON", saCreds, "this is not json", "not JSON"},
		{"no client_email", saCreds, `{"type":"service_account","private_key":"x"}`, "lacks client_email"},
		{"wrong type", saCreds, `{"type":"authorized_user","client_email":"a@b","private_key":"x"}`, `type is "authorized_user"`},
		{"bad key", saCreds, `{"type":"service_account","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}`, "does not parse"},
	}
	for _, c := range cases {
		r := testenv.Check(t, gcsCluster(g.Bucket, c.creds, c.json, ""))
		cc := r.CheckOf(backupTarget, "credentials")
		if cc.Status != "fail" || !strings.Contains(cc.Message, c.want) || !strings.Contains(cc.Message, "googleCredentials.applicationCredentials") {
			t.Errorf("%s: credentials %+v", c.name, cc)
		}
	}
	// gkeEnvironment: default credentials (the emulator needs none); endpointCA is ignored for GCS.
	r := testenv.Check(t, gcsCluster(g.Bucket, "        gkeEnvironment: true", "{}", "      endpointCA: {name: gcs, key: ca.crt}"))
	wantStatuses(t, r, backupTarget, allPass)
	if cc := r.CheckOf(backupTarget, "config"); !strings.Contains(cc.Message, "endpointCA is ignored") {
		t.Errorf("config: %+v", cc)
	}
	r = testenv.Check(t, gcsCluster(g.Bucket, saCreds+"\n        gkeEnvironment: true", "{}", ""))
	if cc := r.CheckOf(backupTarget, "config"); cc.Status != "fail" || !strings.Contains(cc.Message, "are both set: CNPG rejects this (if gkeEnvironment is true, secret with credentials must not be provided)") {
		t.Errorf("config: %+v", cc)
	}
}
