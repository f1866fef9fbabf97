package integration

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/lifecycle"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

// withRetention adds spec.backup.retentionPolicy to an s3Cluster manifest.
func withRetention(doc, policy string) string {
	return strings.Replace(doc, "  backup:\n", "  backup:\n    retentionPolicy: "+policy+"\n", 1)
}

// lockedBucket makes a bucket with Object Lock (versioning on) and a GOVERNANCE default retention
// of days, removed at the end with every version (bypassing governance).
func lockedBucket(t *testing.T, mc *minio.Client, days uint) string {
	t.Helper()
	ctx := context.Background()
	name := testenv.Unique("pf-lock-")
	if err := mc.MakeBucket(ctx, name, minio.MakeBucketOptions{ObjectLocking: true}); err != nil {
		t.Fatalf("make bucket with lock: %v", err)
	}
	t.Cleanup(func() {
		for o := range mc.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
			if o.Err == nil {
				mc.RemoveObject(ctx, name, o.Key, minio.RemoveObjectOptions{VersionID: o.VersionID, GovernanceBypass: true})
			}
		}
		mc.RemoveBucket(ctx, name)
	})
	mode, unit := minio.Governance, minio.Days
	if err := mc.SetObjectLockConfig(ctx, name, &mode, &days, &unit); err != nil {
		t.Fatalf("default retention: %v", err)
	}
	return name
}

// versions counts the versions (delete markers included) of the objects under prefix.
func versions(t *testing.T, mc *minio.Client, bucket, prefix string) (versions, markers int) {
	t.Helper()
	for o := range mc.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			t.Fatalf("list versions: %v", o.Err)
		}
		if o.IsDeleteMarker {
			markers++
		} else {
			versions++
		}
	}
	return versions, markers
}

// A bucket made with Object Lock and a default retention longer than retentionPolicy: every probe
// works (an overwrite adds a version, a delete a marker), store-policies warns. barman-cloud
// 3.13 archives into it, and its objects are locked: a delete only adds a marker.
func TestS3ObjectLockAgreesWithBarman(t *testing.T) {
	t.Parallel()
	e := minioEnv(t)
	mc := e.rootClient(t)
	bucket := lockedBucket(t, mc, 60)
	c := e.root(bucket)
	r := testenv.Check(t, withRetention(c.yaml(), "30d"))
	wantStatuses(t, r, backupTarget, "config=warn store-policies=warn backups=skip *=pass")
	sp := r.CheckOf(backupTarget, "store-policies")
	for _, w := range []string{"versioning with Object Lock", "only add delete markers", "Object Lock default retention GOVERNANCE of 60 days is longer than retentionPolicy 30d", "--check-object-lock", "s3:GetObjectRetention"} {
		if !strings.Contains(sp.Message+sp.Remediation, w) {
			t.Errorf("store-policies does not say %q: %+v", w, sp)
		}
	}
	if len(r.Matrix.Targets[0].Leftovers) != 0 {
		t.Errorf("leftovers %v", r.Matrix.Targets[0].Leftovers)
	}
	// our probe's versions stay (locked), behind a delete marker
	if v, m := versions(t, mc, bucket, "pg-backups/pg/cnpg-preflight-probe-"); v < 2 || m < 1 {
		t.Errorf("probe versions %d, markers %d: want the written versions kept behind a marker", v, m)
	}
	// barman-cloud 3.13 archives a WAL file: it succeeds, and the object is locked by the default retention
	code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, c.dest(), "pg", walFile(t, "000000010000000000000001"))
	if code != 0 {
		t.Fatalf("barman-cloud-wal-archive on a locked bucket: exit %d\n%s", code, out)
	}
	var key string
	for o := range mc.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: "pg-backups/pg/wals/", Recursive: true}) {
		key = o.Key
	}
	mode, until, err := mc.GetObjectRetention(context.Background(), bucket, key, "")
	if err != nil || mode == nil || *mode != minio.Governance || until == nil || until.Before(time.Now().Add(59*24*time.Hour)) {
		t.Errorf("barman's %s: retention %v until %v (%v)", key, mode, until, err)
	}
	// what retention does (a delete without a version): the version stays behind a marker
	testenv.Delete(t, mc, bucket, key)
	if v, m := versions(t, mc, bucket, key); v != 1 || m != 1 {
		t.Errorf("after a delete of barman's WAL: %d version(s), %d marker(s)", v, m)
	}
}

// Versioning and lifecycle rules made with the independent client, judged against retentionPolicy.
func TestS3LifecycleRules(t *testing.T) {
	t.Parallel()
	e := minioEnv(t)
	mc := e.rootClient(t)
	ctx := context.Background()
	expire := func(id, prefix string, days int) lifecycle.Rule {
		return lifecycle.Rule{ID: id, Status: "Enabled", RuleFilter: lifecycle.Filter{Prefix: prefix}, Expiration: lifecycle.Expiration{Days: lifecycle.ExpirationDays(days)}}
	}
	noncurrent := lifecycle.Rule{ID: "noncurrent", Status: "Enabled", NoncurrentVersionExpiration: lifecycle.NoncurrentVersionExpiration{NoncurrentDays: 7}}
	for _, c := range []struct {
		name       string
		versioning bool
		rules      []lifecycle.Rule
		want       string
		msg        []string
	}{
		{"versioning without noncurrent expiration", true, nil, "store-policies=warn", []string{"versioning is on and no lifecycle rule expires noncurrent versions under pg-backups/pg/"}},
		{"versioning with noncurrent expiration", true, []lifecycle.Rule{noncurrent}, "store-policies=pass", []string{"expires noncurrent versions after 7 days"}},
		{"a rule on wals/", false, []lifecycle.Rule{expire("wal-cleanup", "pg-backups/pg/wals/", 400)}, "store-policies=fail",
			[]string{`lifecycle rule wal-cleanup on prefix "pg-backups/pg/wals/" acts on WAL files under pg-backups/pg/wals/`, "silently breaks point-in-time recovery"}},
		{"expiration of the whole prefix shorter than retentionPolicy", false, []lifecycle.Rule{expire("short", "pg-backups/", 14)}, "store-policies=fail",
			[]string{`lifecycle rule short on prefix "pg-backups/" expires objects under pg-backups/pg/ after 14 days, while retentionPolicy 30d (spec.backup.retentionPolicy)`}},
		{"expiration of another prefix", false, []lifecycle.Rule{expire("other", "elsewhere/", 1)}, "store-policies=pass", nil},
		{"expiration longer than retentionPolicy", false, []lifecycle.Rule{expire("long", "", 90)}, "store-policies=warn", []string{"after 90 days, beyond retentionPolicy 30d"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bucket := testenv.NewBucket(t, mc)
			if c.versioning {
				if err := mc.EnableVersioning(ctx, bucket); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { // NewBucket's cleanup removes current objects only
					for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
						mc.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{VersionID: o.VersionID})
					}
				})
			}
			if len(c.rules) > 0 {
				if err := mc.SetBucketLifecycle(ctx, bucket, &lifecycle.Configuration{Rules: c.rules}); err != nil {
					t.Fatalf("lifecycle: %v", err)
				}
			}
			r := testenv.Check(t, withRetention(e.root(bucket).yaml(), "30d"))
			wantStatuses(t, r, backupTarget, "config=warn backups=skip "+c.want+" *=pass")
			sp := r.CheckOf(backupTarget, "store-policies")
			for _, w := range c.msg {
				if !strings.Contains(sp.Message, w) {
					t.Errorf("store-policies does not say %q: %+v", w, sp)
				}
			}
		})
	}
}

// wormProxy is a write-once store in front of MinIO, as a locked GCS bucket or an immutable Azure
// container behaves: a PUT of a key that exists is refused and, with deletes, so is every delete
// (DELETE, and each key of a DeleteObjects). Only whole-object writes are judged (no multipart parts).
func wormProxy(t *testing.T, e s3env, mc *minio.Client, bucket string, deletes bool) *testenv.FaultProxy {
	proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
	const msg = "Object is WORM protected and cannot be overwritten or deleted"
	proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
		key := strings.TrimPrefix(r.URL.Path, "/"+bucket+"/")
		switch {
		case deletes && r.Method == http.MethodPost && r.URL.Query().Has("delete"):
			s3Error(w, http.StatusForbidden, "AccessDenied", msg)
			return true
		case deletes && r.Method == http.MethodDelete && key != r.URL.Path && !r.URL.Query().Has("uploadId"):
			s3Error(w, http.StatusForbidden, "AccessDenied", msg)
			return true
		case r.Method != http.MethodPut || key == r.URL.Path || r.URL.Query().Has("uploadId"):
			return false
		}
		if _, err := mc.StatObject(context.Background(), bucket, key, minio.StatObjectOptions{}); err != nil {
			return false
		}
		s3Error(w, http.StatusForbidden, "AccessDenied", msg)
		return true
	}
	return proxy
}

// A store that refuses to overwrite: overwrite fails, and barman-cloud 3.13 fails the second upload
// of the same key too (what barman ≥ 3.19 does to backup.info). With deletes refused as well
// (retention), delete fails and names the probe it could not remove, and barman-cloud-backup-delete
// 3.13 fails on a seeded backup.
func TestS3WriteOnceStoreAgreesWithBarman(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	t.Run("overwrites refused", func(t *testing.T) {
		proxy := wormProxy(t, e, mc, bucket, false)
		c := e.root(bucket)
		c.endpoint, c.prefix = proxy.URL, "overwrite"
		r := testenv.Check(t, c.yaml())
		wantStatuses(t, r, backupTarget, "config=warn overwrite=fail backups=skip *=pass")
		if o := r.CheckOf(backupTarget, "overwrite"); !strings.Contains(o.Message, "WORM") || !strings.Contains(o.Message, "barman-cloud ≥ 3.19 writes backup.info twice") {
			t.Errorf("overwrite: %+v", o)
		}
		if left := testenv.Snapshot(t, mc, bucket); len(r.Matrix.Targets[0].Leftovers) != 0 || len(left) != 0 {
			t.Errorf("left behind: %v %v", r.Matrix.Targets[0].Leftovers, left)
		}
		args := []string{"--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, c.dest(), "pg", walFile(t, "000000010000000000000002")}
		if code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-wal-archive", args...); code != 0 {
			t.Fatalf("first barman-cloud-wal-archive: exit %d\n%s", code, out)
		}
		if code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-wal-archive", args...); code == 0 || !strings.Contains(out, "WORM") {
			t.Errorf("second barman-cloud-wal-archive of the same key: exit %d, want a failure naming the refusal\n%s", code, out)
		}
	})
	t.Run("overwrites and deletes refused", func(t *testing.T) {
		proxy := wormProxy(t, e, mc, bucket, true)
		c := e.root(bucket)
		c.endpoint, c.prefix = proxy.URL, "retained"
		r := testenv.Check(t, c.yaml())
		wantStatuses(t, r, backupTarget, "config=warn overwrite=fail delete=fail backups=skip *=pass")
		left := r.Matrix.Targets[0].Leftovers
		if len(left) != 1 || !strings.HasPrefix(left[0], "retained/pg/cnpg-preflight-probe-") {
			t.Errorf("leftovers %v: want the probe object the store refused to delete", left)
		}
		for _, k := range left {
			testenv.Delete(t, mc, bucket, k)
		}
		if m := r.CheckOf(backupTarget, "multipart"); !strings.Contains(m.Message, "aborted") {
			t.Errorf("multipart: %+v", m)
		}
		seedBackup(t, mc, bucket, c.prefix, "cloud")
		if code, out := barmanDelete(t, c, c.barmanEnv(""), proxy.URL); code == 0 || !strings.Contains(out, "WORM") {
			t.Errorf("barman-cloud-backup-delete 3.13 on a store refusing deletes: exit %d\n%s", code, out)
		}
	})
}

// Azurite SAS tokens with a short expiry and missing permissions: credentials names the expiry
// date and each missing letter with what needs it; an expired token fails, as barman-cloud 3.13 does.
func TestAzureSASLifetimesAgreeWithBarman(t *testing.T) {
	t.Parallel()
	_, az := azurite(t, false)
	connStr := func(tok string) string {
		return "BlobEndpoint=" + az.Endpoint + "/" + az.Account + ";SharedAccessSignature=" + tok
	}
	t.Run("expires in 3 days, no delete", func(t *testing.T) {
		exp := time.Now().Add(3*24*time.Hour + time.Hour).UTC().Truncate(time.Second)
		tok, sig := az.SAS(t, sas.ContainerPermissions{Read: true, List: true, Create: true, Write: true, Add: true}, exp)
		cs := connStr(tok)
		r := testenv.Check(t, azCluster(az.Destination("pg-backups"), connStrCreds, map[string]string{"AZURE_CONNECTION_STRING": cs}, ""))
		wantStatuses(t, r, backupTarget, "config=warn credentials=warn endpoint=pass bucket=pass write=pass read=pass overwrite=pass delete=fail")
		cr := r.CheckOf(backupTarget, "credentials")
		for _, w := range []string{"the SAS token expires on " + exp.Format(time.RFC3339) + " (in 3 days)", "lack d (delete) for retention (barman-cloud-backup-delete)"} {
			if !strings.Contains(cr.Message, w) {
				t.Errorf("credentials does not say %q: %+v", w, cr)
			}
		}
		assertClean(t, r, sig, cs)
		for _, k := range r.Matrix.Targets[0].Leftovers {
			az.Delete(t, k)
		}
		if code, out := barmanAzure(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs}, "barman-cloud-check-wal-archive", az.Destination("pg-backups"), "pg"); code != 0 {
			t.Errorf("barman-cloud-check-wal-archive with a valid SAS: exit %d\n%s", code, out)
		}
	})
	t.Run("expired", func(t *testing.T) {
		exp := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
		tok, sig := az.SAS(t, sas.ContainerPermissions{Read: true, List: true, Create: true, Write: true, Add: true, Delete: true}, exp)
		cs := connStr(tok)
		r := testenv.Check(t, azCluster(az.Destination("pg-backups"), connStrCreds, map[string]string{"AZURE_CONNECTION_STRING": cs}, ""))
		wantStatuses(t, r, backupTarget, "config=warn credentials=fail *=skip")
		if cr := r.CheckOf(backupTarget, "credentials"); !strings.Contains(cr.Message, "the SAS token expired on "+exp.Format(time.RFC3339)) || !strings.Contains(cr.Remediation, "new SAS token") {
			t.Errorf("credentials: %+v", cr)
		}
		assertClean(t, r, sig, cs)
		if code, out := barmanAzure(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs}, "barman-cloud-check-wal-archive", az.Destination("pg-backups"), "pg"); code == 0 {
			t.Errorf("barman-cloud-check-wal-archive with an expired SAS succeeded:\n%s", out)
		}
	})
}

// The GCS emulator keeps a bucket's default event-based hold and versioning (it does not enforce
// the hold, and keeps no retention policy or lifecycle rule: those are unit-tested on JSON API
// answers). A held bucket fails store-policies and gets no probe object; a versioned one warns.
func TestGCSBucketPolicies(t *testing.T) {
	t.Parallel()
	srv := testenv.Load(t)
	sa := testenv.ServiceAccountJSON(t, "backup@test.iam.gserviceaccount.com")
	t.Run("default event-based hold", func(t *testing.T) {
		g := testenv.NewGCSBucketWith(t, srv.Get("GCS_EMULATOR_HOST"), map[string]any{"defaultEventBasedHold": true})
		r := testenv.Check(t, gcsCluster(g.Bucket, saCreds, sa, ""))
		wantStatuses(t, r, backupTarget, "store-policies=fail write=skip read=skip overwrite=skip delete=skip multipart=skip wal-archive=pass")
		if sp := r.CheckOf(backupTarget, "store-policies"); !strings.Contains(sp.Message, "default event-based hold on every new object") || !strings.Contains(sp.Message, "backup.info") {
			t.Errorf("store-policies: %+v", sp)
		}
		if w := r.CheckOf(backupTarget, "write"); !strings.Contains(w.Message, "a probe object could not be removed") {
			t.Errorf("write: %+v", w)
		}
		if snap := g.Snapshot(t); len(snap) != 0 {
			t.Errorf("objects written into a held bucket: %v", snap)
		}
	})
	t.Run("versioning", func(t *testing.T) {
		g := testenv.NewGCSBucketWith(t, srv.Get("GCS_EMULATOR_HOST"), map[string]any{"versioning": map[string]bool{"enabled": true}})
		r := testenv.Check(t, gcsCluster(g.Bucket, saCreds, sa, ""))
		wantStatuses(t, r, backupTarget, "config=warn store-policies=warn backups=skip *=pass")
		if sp := r.CheckOf(backupTarget, "store-policies"); !strings.Contains(sp.Message, "versioning is on and no lifecycle rule expires noncurrent versions") {
			t.Errorf("store-policies: %+v", sp)
		}
	})
}

// A server certificate expiring in 10 days (a TLS proxy in front of MinIO): endpoint warns with the
// date while barman-cloud 3.13 still succeeds today.
func TestS3CertificateExpiringSoonAgreesWithBarman(t *testing.T) {
	t.Parallel()
	e, _, bucket := minioBucket(t)
	ch := testenv.NewChain(t, testenv.ChainOptions{LeafTTL: 10 * 24 * time.Hour})
	proxy := testenv.NewTLSProxy(t, e.srv.Get("MINIO_ENDPOINT"), ch.Cert)
	c := e.root(bucket)
	c.endpoint, c.ca = proxy.URL, ch.RootPEM
	r := testenv.Check(t, c.yaml())
	wantStatuses(t, r, backupTarget, "config=warn endpoint=warn backups=skip *=pass")
	if ec := r.CheckOf(backupTarget, "endpoint"); !strings.Contains(ec.Message, "the endpoint's certificate expires on") || !strings.Contains(ec.Message, "(in 9 days)") || !strings.Contains(ec.Remediation, "renew") {
		t.Errorf("endpoint: %+v", ec)
	}
	code, out := testenv.Barman(t, c.barmanEnv(writeTemp(t, "ca.pem", ch.RootPEM)), "barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", proxy.URL, c.dest(), "pg")
	if code != 0 {
		t.Errorf("barman-cloud-check-wal-archive: exit %d\n%s", code, out)
	}
}
