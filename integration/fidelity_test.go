package integration

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

// backupInfo is a barman backup.info that barman-cloud-backup-delete accepts.
const backupInfo = `backup_id=20260101T000000
begin_offset=40
begin_time=2026-01-01 00:00:00.000000+00:00
begin_wal=000000010000000000000002
begin_xlog=0/2000028
end_offset=312
end_time=2026-01-01 00:00:05.000000+00:00
end_wal=000000010000000000000002
end_xlog=0/2000138
mode=concurrent
server_name=cloud
size=1000
status=DONE
systemid=7000000000000000000
timeline=1
version=150000
xlog_segment_size=16777216
`

// seedBackup puts a backup barman-cloud-backup-delete can remove under prefix/server.
func seedBackup(t *testing.T, mc *minio.Client, bucket, prefix, server string) {
	base := prefix + "/" + server + "/base/20260101T000000/"
	testenv.Put(t, mc, bucket, base+"backup.info", []byte(backupInfo))
	testenv.Put(t, mc, bucket, base+"data.tar", []byte("not a real tar"))
}

// barmanDelete runs barman-cloud-backup-delete 3.13 on the seeded backup through endpoint.
func barmanDelete(t *testing.T, c s3Cluster, env map[string]string, endpoint string) (int, string) {
	return testenv.Barman(t, env, "barman-cloud-backup-delete", "--cloud-provider", "aws-s3", "--endpoint-url", endpoint, c.dest(), "cloud", "-b", "20260101T000000")
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}

// Stores that refuse the bulk delete barman's retention uses (DeleteObjects): the delete probe
// uses the same call, says whether a single delete works and which barman versions fall back;
// barman-cloud-backup-delete 3.13 (no fallback) fails in every case.
func TestBulkDeleteRefusedAgreesWithBarman(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, code, msg, want, says string
		status                      int
	}{
		{"MissingContentMD5", "MissingContentMD5", "Missing required header for this request: Content-Md5.", "warn", "barman-cloud ≥ 3.16.0 falls back", 400},
		{"InvalidRequest naming Content-MD5", "InvalidRequest", "Content-MD5 is missing", "warn", "barman-cloud ≥ 3.17.0 falls back", 400},
		{"bulk delete denied", "AccessDenied", "Access Denied.", "fail", "no barman-cloud version falls back", 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// A bucket of its own: the bucket is compared before and after, and the cases run
			// side by side.
			e, mc, bucket := minioBucket(t)
			proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
			proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodPost && r.URL.Query().Has("delete") {
					s3Error(w, c.status, c.code, c.msg)
					return true
				}
				return false
			}
			cl := e.root(bucket)
			cl.endpoint, cl.prefix = proxy.URL, "bulk-"+strings.ReplaceAll(strings.ToLower(c.name), " ", "-")
			before := testenv.Snapshot(t, mc, bucket)
			r := testenv.Check(t, cl.yaml())
			d := r.CheckOf(backupTarget, "delete")
			if string(d.Status) != c.want || !strings.Contains(d.Message, c.says) || !strings.Contains(d.Message, "a single delete works") {
				t.Errorf("delete: %+v", d)
			}
			if diff := testenv.Diff(before, testenv.Snapshot(t, mc, bucket)); diff != "" || len(r.Matrix.Targets[0].Leftovers) != 0 {
				t.Errorf("left behind: %q %v", diff, r.Matrix.Targets[0].Leftovers)
			}
			seedBackup(t, mc, bucket, cl.prefix, "cloud")
			if code, out := barmanDelete(t, cl, cl.barmanEnv(""), proxy.URL); code == 0 || !strings.Contains(out, c.code) {
				t.Errorf("barman-cloud-backup-delete 3.13: exit %d\n%s", code, out)
			}
		})
	}
}

// A store that refuses boto3 ≥ 1.36's integrity headers (x-amz-checksum-*, the aws-chunked
// trailer), as older S3-compatibles do. The four environments of the backup client: without the
// variables, with the request one, with the response one, with both. Our write and delete probes
// agree with barman-cloud-wal-archive and barman-cloud-backup-delete 3.13 in each.
func TestChecksumHeadersAgreeWithBarman(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
	proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
		for k := range r.Header {
			if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-checksum-") || lk == "x-amz-sdk-checksum-algorithm" || lk == "x-amz-trailer" {
				s3Error(w, http.StatusBadRequest, "InvalidArgument", k+": checksum headers are not supported by this server")
				return true
			}
		}
		return false
	}
	const req, resp = "AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION"
	for _, vars := range [][]string{nil, {req}, {resp}, {req, resp}} {
		name := "none"
		if len(vars) > 0 {
			name = strings.Join(vars, "+")
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			var sidecar strings.Builder
			for _, v := range vars {
				env[v] = "when_required"
				fmt.Fprintf(&sidecar, "    - {name: %s, value: when_required}\n", v)
			}
			prefix := "sum-" + strings.ToLower(strings.ReplaceAll(name, "+", "-"))
			doc := fmt.Sprintf(`apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: store, namespace: db}
spec:
  configuration:
    destinationPath: s3://%s/%s
    endpointURL: %s
    s3Credentials:
      accessKeyId: {name: store-creds, key: id}
      secretAccessKey: {name: store-creds, key: secret}
  instanceSidecarConfiguration:
    env:
%s---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  plugins:
  - {name: barman-cloud.cloudnative-pg.io, isWALArchiver: true, parameters: {barmanObjectName: store}}
---
apiVersion: v1
kind: Secret
metadata: {name: store-creds, namespace: db}
stringData: {id: %s, secret: %s}
`, bucket, prefix, proxy.URL, sidecar.String(), e.srv.Get("MINIO_ROOT_USER"), e.srv.Get("MINIO_ROOT_PASSWORD"))
			if len(vars) == 0 {
				doc = strings.Replace(doc, "  instanceSidecarConfiguration:\n    env:\n", "", 1)
			}
			r := testenv.Check(t, doc)
			cl := e.root(bucket)
			cl.prefix = prefix
			benv := cl.barmanEnv("")
			for k, v := range env {
				benv[k] = v
			}
			code, out := testenv.Barman(t, benv, "barman-cloud-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", proxy.URL, cl.dest(), "pg", walFile(t, "000000010000000000000001"))
			w := r.CheckOf(backupTarget, "write")
			if (w.Status == "pass") != (code == 0) {
				t.Errorf("write %s but barman-cloud-wal-archive exit %d\n%s", w.Status, code, out)
			}
			if len(vars) == 0 {
				// a difference worth knowing: barman 3.4 (boto3 1.26) sends Content-MD5, not these headers
				if code, out := testenv.Barman34(t, benv, "barman-cloud-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", proxy.URL, cl.dest(), "pg34", walFile(t, "000000010000000000000001")); code != 0 {
					t.Errorf("barman-cloud-wal-archive 3.4: exit %d\n%s", code, out)
				}
			}
			if w.Status == "fail" && (!strings.Contains(w.Remediation, "AWS_REQUEST_CHECKSUM_CALCULATION=when_required") || !strings.Contains(w.Remediation, "instanceSidecarConfiguration.env")) {
				t.Errorf("write remediation: %s", w.Remediation)
			}
			if w.Status == "pass" {
				seedBackup(t, mc, bucket, prefix, "cloud")
				code, out := barmanDelete(t, cl, benv, proxy.URL)
				if d := r.CheckOf(backupTarget, "delete"); d.Status != "fail" || code == 0 {
					t.Errorf("delete %s (%s), barman-cloud-backup-delete exit %d\n%s", d.Status, d.Message, code, out)
				}
			}
		})
	}
}

// A store allowing at most 1,000 parts refuses part number 10,000: the multipart probe says what
// that means for barman-cloud-backup's default chunk size.
func TestPartNumberLimit(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
	proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
		if n, err := strconv.Atoi(r.URL.Query().Get("partNumber")); err == nil && n > 1000 {
			s3Error(w, http.StatusBadRequest, "InvalidArgument", "Part number must be an integer between 1 and 1000, inclusive")
			return true
		}
		return false
	}
	cl := e.root(bucket)
	cl.endpoint = proxy.URL
	before := testenv.Snapshot(t, mc, bucket)
	r := testenv.Check(t, cl.yaml())
	m := r.CheckOf(backupTarget, "multipart")
	if m.Status != "fail" || !strings.Contains(m.Message, "part number 10000 is refused") || !strings.Contains(m.Message, "20.0 GiB") || !strings.Contains(m.Remediation, "--max-archive-size") {
		t.Errorf("multipart: %+v", m)
	}
	if d := testenv.Diff(before, testenv.Snapshot(t, mc, bucket)); d != "" {
		t.Errorf("left behind: %s", d)
	}
}

// A store that requires non-trailing parts of equal size (as Cloudflare R2 does): barman's parts
// differ with snappy. --deep uploads such parts; compared with a real barman-cloud-backup 3.13 of
// a real PostgreSQL with 5 MiB chunks, with snappy (fails) and gzip (succeeds).
func TestUnequalPartsAgreeWithBarman(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
	var mu sync.Mutex
	sizes := map[string]map[int]int64{} // uploadId → part → size
	proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
		q := r.URL.Query()
		if n, err := strconv.Atoi(q.Get("partNumber")); err == nil && r.Method == http.MethodPut {
			size := r.ContentLength
			if d := r.Header.Get("X-Amz-Decoded-Content-Length"); d != "" {
				size, _ = strconv.ParseInt(d, 10, 64)
			}
			mu.Lock()
			if sizes[q.Get("uploadId")] == nil {
				sizes[q.Get("uploadId")] = map[int]int64{}
			}
			sizes[q.Get("uploadId")][n] = size
			mu.Unlock()
			return false
		}
		if r.Method == http.MethodPost && q.Has("uploadId") {
			mu.Lock()
			parts := sizes[q.Get("uploadId")]
			mu.Unlock()
			last, first := 0, int64(-1)
			for n := range parts {
				last = max(last, n)
			}
			for n, s := range parts {
				if n == last {
					continue
				}
				if first >= 0 && s != first {
					s3Error(w, http.StatusBadRequest, "InvalidPart", "All non-trailing parts must have the same length.")
					return true
				}
				first = s
			}
		}
		return false
	}
	cl := e.root(bucket)
	cl.endpoint = proxy.URL
	r := testenv.Check(t, cl.yaml())
	wantStatuses(t, r, backupTarget, "multipart=pass")
	r = testenv.Check(t, cl.yaml(), "--deep")
	if m := r.CheckOf(backupTarget, "multipart"); m.Status != "fail" || !strings.Contains(m.Remediation, "snappy") {
		t.Errorf("multipart --deep: %+v", m)
	}
	// the real client: 5 MiB chunks (--max-archive-size 10MB) of a real data directory
	pg := testenv.StartPostgres(t, cl.barmanEnv(""), "--cloud-provider", "aws-s3", "--endpoint-url", proxy.URL, cl.dest(), "unequal")
	pg.SQL("CREATE TABLE t AS SELECT g, md5(g::text) FROM generate_series(1, 200000) g")
	for _, c := range []struct {
		compression string
		ok          bool
	}{{"--snappy", false}, {"--gzip", true}} {
		out, err := pg.TryBackup("--cloud-provider", "aws-s3", "--endpoint-url", proxy.URL, c.compression, "--max-archive-size", "10MB", cl.dest(), "unequal"+c.compression)
		if (err == nil) != c.ok {
			t.Errorf("barman-cloud-backup %s: %v\n%s", c.compression, err, out)
		}
	}
	_ = mc
}

// WALs compressed with zstd, xz or lz4 (barman ≥ 3.12 writes them): the empty-archive check of
// 3.13 counts them, as we do; 3.4's does not (a difference worth knowing).
func TestNewCompressionSuffixesAgreeWithBarman313(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	c := e.root(bucket)
	testenv.Put(t, mc, bucket, "pg-backups/pg/wals/0000000100000000/000000010000000000000001.zst", []byte("zstd"))
	r := testenv.Check(t, c.yaml())
	wantStatuses(t, r, backupTarget, "wal-archive=fail")
	args := []string{"--cloud-provider", "aws-s3", "--endpoint-url", c.endpoint, c.dest(), "pg"}
	if code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-check-wal-archive", args...); code != 1 || !strings.Contains(out, "Expected empty archive") {
		t.Errorf("barman-cloud-check-wal-archive 3.13: exit %d\n%s", code, out)
	}
	if code, out := testenv.Barman34(t, c.barmanEnv(""), "barman-cloud-check-wal-archive", args...); code != 0 {
		t.Errorf("barman-cloud-check-wal-archive 3.4: exit %d (it used not to count .zst)\n%s", code, out)
	}
}
