package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cnpg-preflight/cnpg-preflight/checks"
	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

// s3Cluster describes one Cluster with an in-tree S3 backup destination.
type s3Cluster struct {
	name, bucket, prefix, endpoint, key, secret string
	ca                                          string // PEM put in the Secret and referenced as endpointCA
	extra                                       string // more barmanObjectStore lines, indented by 6
	annotations                                 string // metadata annotations lines, indented by 4
}

func (c s3Cluster) yaml() string {
	if c.name == "" {
		c.name = "pg"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: %s\n  namespace: db\n", c.name)
	if c.annotations != "" {
		b.WriteString("  annotations:\n" + c.annotations + "\n")
	}
	fmt.Fprintf(&b, "spec:\n  instances: 1\n  backup:\n    barmanObjectStore:\n      destinationPath: s3://%s/%s\n      endpointURL: %s\n", c.bucket, c.prefix, c.endpoint)
	b.WriteString("      s3Credentials:\n        accessKeyId: {name: store-creds, key: ACCESS_KEY_ID}\n        secretAccessKey: {name: store-creds, key: ACCESS_SECRET_KEY}\n")
	if c.ca != "" {
		b.WriteString("      endpointCA: {name: store-creds, key: ca.crt}\n")
	}
	if c.extra != "" {
		b.WriteString(c.extra + "\n")
	}
	fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Secret\nmetadata: {name: store-creds, namespace: db}\nstringData:\n  ACCESS_KEY_ID: %s\n  ACCESS_SECRET_KEY: %s\n", c.key, c.secret)
	if c.ca != "" {
		b.WriteString("  ca.crt: |\n")
		for _, l := range strings.Split(strings.TrimSpace(c.ca), "\n") {
			b.WriteString("    " + l + "\n")
		}
	}
	return b.String()
}

// barmanEnv is the environment CNPG gives barman-cloud for this configuration.
func (c s3Cluster) barmanEnv(caFile string) map[string]string {
	env := map[string]string{"AWS_ACCESS_KEY_ID": c.key, "AWS_SECRET_ACCESS_KEY": c.secret}
	if caFile != "" {
		env["AWS_CA_BUNDLE"] = caFile
	}
	return env
}

func (c s3Cluster) dest() string { return fmt.Sprintf("s3://%s/%s", c.bucket, c.prefix) }

const backupTarget = "db/pg/backup"

// assertClean fails when any output carries a secret value.
func assertClean(t *testing.T, r testenv.Result, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && (strings.Contains(r.Stdout, s) || strings.Contains(r.Stderr, s)) {
			t.Errorf("output leaks secret %q", s)
		}
	}
}

// wantStatuses compares a target's checks with a spec ("id=status ... *=status", see
// checks.Mismatches): expectations are derived from the registry, not spelled out in full.
func wantStatuses(t *testing.T, r testenv.Result, target, want string) {
	t.Helper()
	if ms := checks.Mismatches(r.Target(target), want); len(ms) > 0 {
		t.Errorf("statuses of %s: %s\n got %s\nwant %s\nstdout: %s\nstderr: %s", target, strings.Join(ms, "; "), r.Statuses(target), want, r.Stdout, r.Stderr)
	}
}

type s3env struct {
	srv  *testenv.Servers
	host string
}

func minioEnv(t *testing.T) s3env {
	srv := testenv.Load(t)
	return s3env{srv: srv, host: strings.TrimPrefix(srv.Get("MINIO_ENDPOINT"), "http://")}
}

// rootClient is the independent minio-go client with the root identity.
func (e s3env) rootClient(t *testing.T) *minio.Client {
	return testenv.MinIO(t, e.host, e.srv.Get("MINIO_ROOT_USER"), e.srv.Get("MINIO_ROOT_PASSWORD"))
}

// minioBucket is the usual start of a MinIO scenario: the servers, the independent client, a fresh bucket.
func minioBucket(t *testing.T) (s3env, *minio.Client, string) {
	e := minioEnv(t)
	mc := e.rootClient(t)
	return e, mc, testenv.NewBucket(t, mc)
}

func (e s3env) root(bucket string) s3Cluster {
	return s3Cluster{bucket: bucket, prefix: "pg-backups", endpoint: e.srv.Get("MINIO_ENDPOINT"), key: e.srv.Get("MINIO_ROOT_USER"), secret: e.srv.Get("MINIO_ROOT_PASSWORD")}
}

const allPass = "config=warn backups=skip *=pass"

func TestS3AllPassAgreesWithBarman(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	testenv.Put(t, mc, bucket, "unrelated/object.txt", []byte("keep me"))
	c := e.root(bucket)
	before := testenv.Snapshot(t, mc, bucket)
	r := testenv.Check(t, c.yaml())
	if r.Code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	wantStatuses(t, r, backupTarget, allPass)
	assertClean(t, r, c.secret)
	if d := testenv.Diff(before, testenv.Snapshot(t, mc, bucket)); d != "" {
		t.Errorf("the run changed the bucket:\n%s", d)
	}
	code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, c.dest(), "pg")
	if code != 0 {
		t.Errorf("barman-cloud-check-wal-archive disagrees: exit %d\n%s", code, out)
	}
}

func TestS3Versitygw(t *testing.T) {
	t.Parallel()
	srv := testenv.Load(t)
	host := strings.TrimPrefix(srv.Get("VERSITYGW_ENDPOINT"), "http://")
	mc := testenv.MinIO(t, host, srv.Get("VERSITYGW_ACCESS"), srv.Get("VERSITYGW_SECRET"))
	bucket := testenv.NewBucket(t, mc)
	c := s3Cluster{bucket: bucket, prefix: "pg-backups", endpoint: srv.Get("VERSITYGW_ENDPOINT"), key: srv.Get("VERSITYGW_ACCESS"), secret: srv.Get("VERSITYGW_SECRET")}
	before := testenv.Snapshot(t, mc, bucket)
	r := testenv.Check(t, c.yaml())
	wantStatuses(t, r, backupTarget, allPass)
	assertClean(t, r, c.secret)
	if d := testenv.Diff(before, testenv.Snapshot(t, mc, bucket)); d != "" {
		t.Errorf("the run changed the bucket:\n%s", d)
	}
	code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, c.dest(), "pg")
	if code != 0 {
		t.Errorf("barman-cloud-check-wal-archive disagrees: exit %d\n%s", code, out)
	}
}

func TestS3WrongSecretAgreesWithBarman(t *testing.T) {
	t.Parallel()
	e, _, bucket := minioBucket(t)
	c := e.root(bucket)
	c.secret = "wrong-secret-canary-7f3a9d"
	r := testenv.Check(t, c.yaml())
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1", r.Code)
	}
	wantStatuses(t, r, backupTarget, "config=warn credentials=pass endpoint=pass bucket=fail *=skip")
	if msg := r.CheckOf(backupTarget, "bucket").Message; !strings.Contains(msg, "SignatureDoesNotMatch") {
		t.Errorf("bucket message does not name the signature error: %s", msg)
	}
	assertClean(t, r, c.secret)
	code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, c.dest(), "pg")
	if code != 4 || !strings.Contains(out, "403") {
		t.Errorf("barman-cloud-check-wal-archive: exit %d (want 4, 403)\n%s", code, out)
	}
}

// A missing bucket is a warning that blocks every other probe: barman-cloud (both the check and
// the wal-archive command) creates it on first use when the identity may; we never create one.
func TestS3MissingBucketAgreesWithBarman(t *testing.T) {
	t.Parallel()
	e := minioEnv(t)
	mc := e.rootClient(t)
	c := e.root(testenv.Unique("pf-missing-"))
	r := testenv.Check(t, c.yaml())
	wantStatuses(t, r, backupTarget, "config=warn credentials=pass endpoint=pass bucket=warn *=skip")
	bc := r.CheckOf(backupTarget, "bucket")
	if !strings.Contains(bc.Message, "404") || !strings.Contains(bc.Remediation, "CreateBucket") {
		t.Errorf("bucket check does not explain the missing bucket: %+v", bc)
	}
	if ok, _ := mc.BucketExists(t.Context(), c.bucket); ok {
		t.Fatal("cnpg-preflight created the bucket")
	}
	t.Cleanup(func() { testenv.RemoveBucket(mc, c.bucket) })
	code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, c.dest(), "pg", walFile(t, "000000010000000000000001"))
	if ok, _ := mc.BucketExists(t.Context(), c.bucket); code != 0 || !ok {
		t.Errorf("barman-cloud-wal-archive: exit %d, bucket created %v (observed: 0, true)\n%s", code, ok, out)
	}
}

func TestS3ReadOnlyUserAgreesWithBarman(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	c := e.root(bucket)
	c.key, c.secret = "ro-user", "ro-user-secret-0001"
	before := testenv.Snapshot(t, mc, bucket)
	r := testenv.Check(t, c.yaml())
	wantStatuses(t, r, backupTarget, "config=warn store-policies=warn write=fail read=skip overwrite=skip delete=skip multipart=fail backups=skip *=pass")
	if msg := r.CheckOf(backupTarget, "write").Message; !strings.Contains(msg, "AccessDenied") {
		t.Errorf("write message: %s", msg)
	}
	// a denied read of the bucket's settings is a warning naming the permission, never a failure
	if sp := r.CheckOf(backupTarget, "store-policies"); !strings.Contains(sp.Message, "needs s3:GetBucketVersioning on arn:aws:s3:::"+bucket) || !strings.Contains(sp.Message, "s3:GetLifecycleConfiguration") {
		t.Errorf("store-policies: %+v", sp)
	}
	if d := testenv.Diff(before, testenv.Snapshot(t, mc, bucket)); d != "" {
		t.Errorf("the run changed the bucket:\n%s", d)
	}
	// barman: the check passes (it does not test writes), then archiving fails.
	code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, c.dest(), "pg")
	if code != 0 {
		t.Errorf("barman-cloud-check-wal-archive: exit %d, want 0\n%s", code, out)
	}
	code, out = testenv.Barman(t, c.barmanEnv(""), "barman-cloud-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, c.dest(), "pg", walFile(t, "000000010000000000000001"))
	if code == 0 || !strings.Contains(out, "AccessDenied") {
		t.Errorf("barman-cloud-wal-archive: exit %d, want a failure with AccessDenied\n%s", code, out)
	}
}

func TestS3NoDeleteUser(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	c := e.root(bucket)
	c.key, c.secret = "nodelete-user", "nodelete-user-secret-0001"
	before := testenv.Snapshot(t, mc, bucket)
	r := testenv.Check(t, c.yaml())
	wantStatuses(t, r, backupTarget, "config=warn store-policies=warn delete=fail backups=skip *=pass")
	// The probe object cannot be deleted by this identity: the report must name it exactly.
	left := r.Matrix.Targets[0].Leftovers
	diff := testenv.Diff(before, testenv.Snapshot(t, mc, bucket))
	if len(left) != 1 || diff != "+ "+left[0] {
		t.Errorf("leftovers %v, bucket diff %q", left, diff)
	}
	if len(left) == 1 && !strings.HasPrefix(left[0], "pg-backups/pg/cnpg-preflight-probe-") {
		t.Errorf("probe object outside <prefix>/<serverName>/: %s", left[0])
	}
	if !strings.Contains(r.CheckOf(backupTarget, "multipart").Message, "aborted") {
		t.Errorf("multipart should abort without delete rights: %s", r.CheckOf(backupTarget, "multipart").Message)
	}
}

func TestS3PrefixScopedUserAgreesWithBarman(t *testing.T) {
	t.Parallel()
	e, _, bucket := minioBucket(t)
	c := e.root(bucket)
	c.prefix = "scoped"
	c.key, c.secret = "prefix-user", "prefix-user-secret-0001"
	r := testenv.Check(t, c.yaml())
	wantStatuses(t, r, backupTarget, "config=warn credentials=pass endpoint=pass bucket=fail *=skip")
	bc := r.CheckOf(backupTarget, "bucket")
	if !strings.Contains(bc.Message, "listing under") || !strings.Contains(bc.Remediation, "s3:ListBucket") {
		t.Errorf("bucket check does not explain the prefix-scoped policy: %+v", bc)
	}
	code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, c.dest(), "pg")
	if code != 4 || !strings.Contains(out, "403") {
		t.Errorf("barman-cloud-check-wal-archive: exit %d (want 4, 403)\n%s", code, out)
	}
}

func TestS3TLSEndpointCAAgreesWithBarman(t *testing.T) {
	t.Parallel()
	srv := testenv.Load(t)
	host := strings.TrimPrefix(srv.Get("MINIO_TLS_ENDPOINT"), "https://")
	mc := testenv.MinIO(t, host, srv.Get("MINIO_ROOT_USER"), srv.Get("MINIO_ROOT_PASSWORD"), srv.Get("TLS_CA"))
	bucket := testenv.NewBucket(t, mc)
	ca, err := os.ReadFile(srv.Get("TLS_CA"))
	if err != nil {
		t.Fatal(err)
	}
	c := s3Cluster{bucket: bucket, prefix: "tls", endpoint: srv.Get("MINIO_TLS_ENDPOINT"), key: srv.Get("MINIO_ROOT_USER"), secret: srv.Get("MINIO_ROOT_PASSWORD")}

	t.Run("without endpointCA", func(t *testing.T) {
		r := testenv.Check(t, c.yaml())
		wantStatuses(t, r, backupTarget, "config=warn credentials=pass endpoint=fail *=skip")
		ec := r.CheckOf(backupTarget, "endpoint")
		if !strings.Contains(ec.Message, "unknown authority") || !strings.Contains(ec.Remediation, "endpointCA") {
			t.Errorf("endpoint check: %+v", ec)
		}
		code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, c.dest(), "pg")
		if code == 0 || !strings.Contains(out, "CERTIFICATE_VERIFY_FAILED") {
			t.Errorf("barman-cloud-check-wal-archive: exit %d, want CERTIFICATE_VERIFY_FAILED\n%s", code, out)
		}
	})
	t.Run("with endpointCA", func(t *testing.T) {
		c := c
		c.ca = string(ca)
		before := testenv.Snapshot(t, mc, bucket)
		r := testenv.Check(t, c.yaml())
		wantStatuses(t, r, backupTarget, allPass)
		if d := testenv.Diff(before, testenv.Snapshot(t, mc, bucket)); d != "" {
			t.Errorf("the run changed the bucket:\n%s", d)
		}
		code, out := testenv.Barman(t, c.barmanEnv(srv.Get("TLS_CA")), "barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, c.dest(), "pg")
		if code != 0 {
			t.Errorf("barman-cloud-check-wal-archive with AWS_CA_BUNDLE: exit %d\n%s", code, out)
		}
	})
	t.Run("http against the TLS port", func(t *testing.T) {
		c := c
		c.endpoint = "http://" + host
		r := testenv.Check(t, c.yaml())
		ec := r.CheckOf(backupTarget, "endpoint")
		if ec.Status != "fail" || !strings.Contains(ec.Message, "speaks TLS") {
			t.Errorf("endpoint check: %+v", ec)
		}
	})
	t.Run("https against a plain HTTP port", func(t *testing.T) {
		c := c
		c.endpoint = strings.Replace(srv.Get("MINIO_ENDPOINT"), "http://", "https://", 1)
		r := testenv.Check(t, c.yaml())
		ec := r.CheckOf(backupTarget, "endpoint")
		if ec.Status != "fail" || !strings.Contains(ec.Message, "plain HTTP") {
			t.Errorf("endpoint check: %+v", ec)
		}
	})
}

func TestS3NonEmptyArchiveAgreesWithBarman(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	c := e.root(bucket)
	// An unrelated object under wals/ does not count, as in barman.
	testenv.Put(t, mc, bucket, "pg-backups/pg/wals/README", []byte("not a WAL"))
	r := testenv.Check(t, c.yaml())
	if st := r.CheckOf(backupTarget, "wal-archive").Status; st != "pass" {
		t.Errorf("wal-archive with only a non-WAL object: %s", st)
	}
	code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, "-z", c.dest(), "pg", walFile(t, "000000010000000000000003"))
	if code != 0 {
		t.Fatalf("barman-cloud-wal-archive: exit %d\n%s", code, out)
	}
	r = testenv.Check(t, c.yaml())
	wc := r.CheckOf(backupTarget, "wal-archive")
	if wc.Status != "fail" || !strings.Contains(wc.Message, "Expected empty archive") || !strings.Contains(wc.Message, "000000010000000000000003") {
		t.Errorf("wal-archive: %+v", wc)
	}
	if r.Code != 1 {
		t.Errorf("exit %d, want 1", r.Code)
	}
	code, out = testenv.Barman(t, c.barmanEnv(""), "barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, c.dest(), "pg")
	if code != 1 || !strings.Contains(out, "Expected empty archive") {
		t.Errorf("barman-cloud-check-wal-archive: exit %d, want 1 Expected empty archive\n%s", code, out)
	}
	c.annotations = "    cnpg.io/skipEmptyWalArchiveCheck: enabled"
	r = testenv.Check(t, c.yaml())
	if wc := r.CheckOf(backupTarget, "wal-archive"); wc.Status != "skip" || !strings.Contains(wc.Message, "skipEmptyWalArchiveCheck") {
		t.Errorf("wal-archive with the skip annotation: %+v", wc)
	}
}

func TestS3EncryptionRefusedAgreesWithBarman(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	c := e.root(bucket)
	c.extra = "      wal:\n        encryption: AES256"
	before := testenv.Snapshot(t, mc, bucket)
	r := testenv.Check(t, c.yaml())
	wantStatuses(t, r, backupTarget, "config=warn write=fail read=skip overwrite=skip delete=skip multipart=fail backups=skip *=pass")
	if msg := r.CheckOf(backupTarget, "write").Message; !strings.Contains(strings.ToLower(msg), "kms") && !strings.Contains(strings.ToLower(msg), "encrypt") {
		t.Errorf("write message does not name encryption: %s", msg)
	}
	if d := testenv.Diff(before, testenv.Snapshot(t, mc, bucket)); d != "" {
		t.Errorf("the run changed the bucket:\n%s", d)
	}
	code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, "-e", "AES256", c.dest(), "pg", walFile(t, "000000010000000000000001"))
	if code == 0 {
		t.Errorf("barman-cloud-wal-archive -e AES256 succeeded:\n%s", out)
	}
}

func TestS3ReadOnlyFlagAndSources(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	c := e.root(bucket)
	testenv.Put(t, mc, bucket, "pg-backups/origin/wals/0000000100000000/000000010000000000000001.gz", []byte("wal"))
	before := testenv.Snapshot(t, mc, bucket)

	r := testenv.Check(t, c.yaml(), "--read-only")
	wantStatuses(t, r, backupTarget, "config=warn write=skip read=skip overwrite=skip delete=skip multipart=skip backups=skip *=pass")

	// A recovery source is never written, with or without --read-only.
	src := fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  bootstrap:
    recovery: {source: origin}
  externalClusters:
  - name: origin
    barmanObjectStore:
      destinationPath: s3://%s/pg-backups
      endpointURL: %s
      s3Credentials:
        accessKeyId: {name: store-creds, key: ACCESS_KEY_ID}
        secretAccessKey: {name: store-creds, key: ACCESS_SECRET_KEY}
---
apiVersion: v1
kind: Secret
metadata: {name: store-creds, namespace: db}
stringData: {ACCESS_KEY_ID: %s, ACCESS_SECRET_KEY: %s}
`, bucket, c.endpoint, c.key, c.secret)
	r = testenv.Check(t, src)
	// the seeded "WAL" is 3 bytes, no WAL page header: system-id cannot read whose it is (warn)
	wantStatuses(t, r, "db/pg/recovery-source/origin", "write=skip overwrite=skip delete=skip multipart=skip backups=fail system-id=warn *=pass")
	if d := testenv.Diff(before, testenv.Snapshot(t, mc, bucket)); d != "" {
		t.Errorf("a read-only run changed the bucket:\n%s", d)
	}
}

func TestS3EndpointDown(t *testing.T) {
	t.Parallel()
	e := minioEnv(t)
	c := e.root("any-bucket")
	c.endpoint = "http://127.0.0.1:1" // nothing listens there
	r := testenv.Check(t, c.yaml())
	ec := r.CheckOf(backupTarget, "endpoint")
	if ec.Status != "fail" || !strings.Contains(ec.Message, "connection refused") {
		t.Errorf("endpoint check: %+v", ec)
	}
}

// walFile writes a fake WAL segment (barman-cloud-wal-archive uploads any file by its name).
func walFile(t *testing.T, name string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("not a real WAL segment, just its name\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A MinIO in region eu-west-3 and no region in the Cluster: botocore's region redirector signs
// again for the region the store names, so barman-cloud 3.13 (and 3.4) succeed — and so do we,
// with a warning naming the region that saves the round trip.
func TestS3RegionRedirectAgreesWithBarman(t *testing.T) {
	t.Parallel()
	srv := testenv.Load(t)
	endpoint := srv.Get("MINIO_REGION_ENDPOINT")
	if endpoint == "" {
		t.Fatal("no MINIO_REGION_ENDPOINT in servers.env: restart scripts/servers.sh")
	}
	mc, err := minio.New(strings.TrimPrefix(endpoint, "http://"), &minio.Options{Creds: credentials.NewStaticV4(srv.Get("MINIO_ROOT_USER"), srv.Get("MINIO_ROOT_PASSWORD"), ""), Region: srv.Get("MINIO_REGION")})
	if err != nil {
		t.Fatal(err)
	}
	bucket := testenv.Unique("pf-")
	if err := mc.MakeBucket(t.Context(), bucket, minio.MakeBucketOptions{Region: srv.Get("MINIO_REGION")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.RemoveBucket(mc, bucket) })
	c := s3Cluster{bucket: bucket, prefix: "pg-backups", endpoint: endpoint, key: srv.Get("MINIO_ROOT_USER"), secret: srv.Get("MINIO_ROOT_PASSWORD")}
	r := testenv.Check(t, c.yaml())
	wantStatuses(t, r, backupTarget, "config=warn bucket=warn backups=skip *=pass")
	if b := r.CheckOf(backupTarget, "bucket"); !strings.Contains(b.Message, "the bucket is in eu-west-3") || !strings.Contains(b.Remediation, `"eu-west-3"`) {
		t.Errorf("bucket: %+v", b)
	}
	wal := walFile(t, "000000010000000000000001")
	for _, run := range []func(testing.TB, map[string]string, string, ...string) (int, string){testenv.Barman, testenv.Barman34} {
		code, out := run(t, c.barmanEnv(""), "barman-cloud-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", endpoint, c.dest(), "pg-region", wal)
		if code != 0 {
			t.Errorf("barman-cloud-wal-archive without a region: exit %d\n%s", code, out)
		}
	}
}
