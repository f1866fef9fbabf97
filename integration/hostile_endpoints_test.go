package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

// recorder is a second host that must never be contacted: it counts requests and remembers any
// credential-bearing header it was sent.
type recorder struct {
	url      string
	requests atomic.Int64
	leaked   atomic.Value // string
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.url = httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.requests.Add(1)
		for _, h := range []string{"Authorization", "X-Amz-Security-Token", "Referer"} {
			if v := r.Header.Get(h); v != "" {
				rec.leaked.Store(h + ": " + v)
			}
		}
		if strings.Contains(r.URL.RawQuery, "sig=") {
			rec.leaked.Store("query: " + r.URL.RawQuery)
		}
		w.WriteHeader(http.StatusOK)
	}))
	return rec
}

func (rec *recorder) assertUntouched(t *testing.T) {
	t.Helper()
	if n := rec.requests.Load(); n != 0 {
		leak, _ := rec.leaked.Load().(string)
		t.Errorf("the redirect target received %d request(s) (leaked %q)", n, leak)
	}
}

// redirectAll answers every request with status, Location on the other host.
func redirectAll(status int, to string) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Location", to+r.URL.RequestURI())
		w.WriteHeader(status)
		return true
	}
}

// Credentials never reach another host: a 301/302/307/308 is reported naming the Location host,
// never followed (S3 with a session token: the token used to go to the second host on every
// request; on another port of the same host, the whole Authorization header).
func TestS3RedirectsAreNeverFollowed(t *testing.T) {
	t.Parallel()
	e, _, bucket := minioBucket(t)
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(t)
			proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
			proxy.Rule = redirectAll(status, rec.url)
			c := e.root(bucket)
			c.endpoint = proxy.URL
			c.extra = "        sessionToken: {name: store-creds, key: TOKEN}"
			doc := strings.Replace(c.yaml(), "  ACCESS_SECRET_KEY:", "  TOKEN: session-token-CANARY-0001\n  ACCESS_SECRET_KEY:", 1)
			doc = strings.Replace(doc, "        secretAccessKey: {name: store-creds, key: ACCESS_SECRET_KEY}\n", "        secretAccessKey: {name: store-creds, key: ACCESS_SECRET_KEY}\n        sessionToken: {name: store-creds, key: TOKEN}\n", 1)
			doc = strings.Replace(doc, c.extra+"\n", "", 1)
			r := testenv.Check(t, doc, "--timeout", "10s")
			rec.assertUntouched(t)
			host := strings.TrimPrefix(rec.url, "http://")
			if b := r.CheckOf(backupTarget, "bucket"); b.Status != "fail" || !strings.Contains(b.Message, "redirects to host "+host) || !strings.Contains(b.Message, "does not follow redirects") {
				t.Errorf("bucket: %+v", b)
			}
			if strings.Contains(r.Stdout+r.Stderr, "session-token-CANARY") {
				t.Error("the session token leaks into the output")
			}
		})
	}
}

// S3's own 301 PermanentRedirect names the bucket's region: the fix says which region to set.
func TestS3PermanentRedirectNamesRegion(t *testing.T) {
	t.Parallel()
	e, _, bucket := minioBucket(t)
	rec := newRecorder(t)
	proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
	proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("x-amz-bucket-region", "eu-central-1")
		w.Header().Set("Location", rec.url+r.URL.RequestURI())
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusMovedPermanently)
		if r.Method != http.MethodHead {
			io.WriteString(w, `<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message></Error>`)
		}
		return true
	}
	c := e.root(bucket)
	c.endpoint = proxy.URL
	r := testenv.Check(t, c.yaml(), "--timeout", "10s")
	rec.assertUntouched(t)
	if b := r.CheckOf(backupTarget, "bucket"); b.Status != "fail" || !strings.Contains(b.Remediation, `"eu-central-1"`) {
		t.Errorf("bucket: %+v", b)
	}
}

// Azure with a SAS: the signature (sig=) never reaches the other host, not even in a Referer.
func TestAzureRedirectsAreNeverFollowed(t *testing.T) {
	t.Parallel()
	_, az := azurite(t, false)
	rec := newRecorder(t)
	proxy := testenv.NewFaultProxy(t, az.Endpoint)
	proxy.Rule = redirectAll(http.StatusTemporaryRedirect, rec.url)
	cs, sig := az.SASConnectionString(t, sasAll())
	cs = strings.Replace(cs, az.Endpoint, proxy.URL, 1)
	dest := strings.Replace(az.Destination("pg-backups"), az.Endpoint, proxy.URL, 1)
	r := testenv.Check(t, azCluster(dest, connStrCreds, map[string]string{"AZURE_CONNECTION_STRING": cs}, ""), "--timeout", "10s")
	rec.assertUntouched(t)
	if b := r.CheckOf(backupTarget, "bucket"); b.Status != "fail" || !strings.Contains(b.Message, "redirects to host") {
		t.Errorf("bucket: %+v", b)
	}
	assertClean(t, r, sig)
}

// The GCS client does not follow a redirect either.
func TestGCSRedirectsAreNeverFollowed(t *testing.T) {
	t.Parallel()
	srv := testenv.Load(t)
	g := testenv.NewGCSBucket(t, srv.Get("GCS_EMULATOR_HOST"))
	rec := newRecorder(t)
	proxy := testenv.NewFaultProxy(t, "http://"+srv.Get("GCS_EMULATOR_HOST"))
	proxy.Rule = redirectAll(http.StatusFound, rec.url)
	r := testenv.CheckWith(t, testenv.Opts{Stdin: gcsCluster(g.Bucket, saCreds, testenv.ServiceAccountJSON(t, "r@test.iam.gserviceaccount.com"), ""),
		Env: map[string]string{"STORAGE_EMULATOR_HOST": strings.TrimPrefix(proxy.URL, "http://")}}, "--timeout", "10s")
	rec.assertUntouched(t)
	if b := r.CheckOf(backupTarget, "bucket"); b.Status != "fail" || !strings.Contains(b.Message, "redirects to host") {
		t.Errorf("bucket: %+v\n%s", b, r.Stdout)
	}
}

// endless writes body bytes until the client goes away.
func endless(w http.ResponseWriter, r *http.Request, chunk []byte) {
	for r.Context().Err() == nil {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// Whatever a server streams, every answer is bounded: the verdict comes fast and names the cause.
// (Peak memory under these streams is measured by make bench.)
func TestEndlessAnswersAreBounded(t *testing.T) {
	t.Parallel()
	e, _, bucket := minioBucket(t)
	junk := []byte(strings.Repeat("<Contents><Key>junk</Key></Contents>", 1000))
	cases := []struct {
		name, check, want string
		rule              func(w http.ResponseWriter, r *http.Request) bool
	}{
		{"endless GetObject body", "read", "differ", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, probeMarker) {
				return false
			}
			w.WriteHeader(http.StatusOK)
			endless(w, r, junk)
			return true
		}},
		{"endless 500 error body", "list", "MiB", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || r.URL.Query().Get("list-type") != "2" {
				return false // HEAD answers carry no body
			}
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "<Error><Code>InternalError</Code><Message>")
			endless(w, r, []byte("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"))
			return true
		}},
		{"endless ListObjectsV2 document", "list", "MiB", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Query().Get("list-type") != "2" {
				return false
			}
			w.Header().Set("Content-Type", "application/xml")
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name>`)
			endless(w, r, junk)
			return true
		}},
		{"gzip bomb listing", "list", "", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Query().Get("list-type") != "2" {
				return false
			}
			w.Header().Set("Content-Type", "application/xml")
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			io.WriteString(zw, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name>`)
			zeros := make([]byte, 1<<20)
			for r.Context().Err() == nil {
				if _, err := zw.Write(zeros); err != nil {
					return true
				}
			}
			return true
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
			proxy.Rule = c.rule
			cl := e.root(bucket)
			cl.endpoint = proxy.URL
			start := time.Now()
			r := testenv.Check(t, cl.yaml(), "--timeout", "8s")
			if took := time.Since(start); took > 9*time.Second {
				t.Errorf("verdict after %s (--timeout 8s)", took)
			}
			if ch := r.CheckOf(backupTarget, c.check); ch.Status != "fail" || !strings.Contains(ch.Message, c.want) {
				t.Errorf("%s: %+v", c.check, ch)
			}
			if left := r.Matrix.Targets[0].Leftovers; len(left) != 0 {
				t.Errorf("leftovers: %v", left)
			}
		})
	}
}

// A listing that never ends (IsTruncated forever, or pages of CommonPrefixes only) costs a
// bounded number of requests.
func TestEndlessListingsAreBounded(t *testing.T) {
	t.Parallel()
	e, _, bucket := minioBucket(t)
	for _, prefixesOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("prefixes only %v", prefixesOnly), func(t *testing.T) {
			t.Parallel()
			proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
			var n atomic.Int64
			proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Query().Get("list-type") != "2" {
					return false
				}
				i := n.Add(1)
				entry := fmt.Sprintf("<Contents><Key>%sjunk-%d</Key><Size>1</Size></Contents>", r.URL.Query().Get("prefix"), i)
				if prefixesOnly {
					entry = fmt.Sprintf("<CommonPrefixes><Prefix>%sdir-%d/</Prefix></CommonPrefixes>", r.URL.Query().Get("prefix"), i)
				}
				w.Header().Set("Content-Type", "application/xml")
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated><NextContinuationToken>t%d</NextContinuationToken>%s</ListBucketResult>`, i, entry)
				return true
			}
			cl := e.root(bucket)
			cl.endpoint = proxy.URL
			r := testenv.Check(t, cl.yaml(), "--timeout", "20s")
			if got := n.Load(); got > 30 {
				t.Errorf("%d listing requests", got)
			}
			if r.Matrix.Targets[0].Requests > 60 {
				t.Errorf("%d requests for the target", r.Matrix.Targets[0].Requests)
			}
			if left := r.Matrix.Targets[0].Leftovers; len(left) != 0 {
				t.Errorf("leftovers: %v", left)
			}
		})
	}
}

// A source whose listing says 1 byte and whose GET never ends is read within the cap.
func TestSourceObjectLyingAboutItsSize(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	testenv.Put(t, mc, bucket, "archive/origin/base/20260101T000000/backup.info", []byte("status=DONE\n"))
	proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
	proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "backup.info") {
			return false
		}
		w.WriteHeader(http.StatusOK)
		endless(w, r, []byte(strings.Repeat("status=DONE\n", 100)))
		return true
	}
	doc := recoveryDoc(e, bucket, proxy.URL)
	start := time.Now()
	r := testenv.Check(t, doc, "--timeout", "20s")
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("verdict after %s", took)
	}
	if ch := r.CheckOf("db/pg/recovery-source/origin", "read"); ch.Status != "fail" || !strings.Contains(ch.Message, "lists as 12 bytes") {
		t.Errorf("read: %+v", ch)
	}
}

// recoveryDoc is a Cluster recovering from archive/origin of bucket through endpoint.
func recoveryDoc(e s3env, bucket, endpoint string) string {
	return fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  bootstrap:
    recovery: {source: origin}
  externalClusters:
  - name: origin
    barmanObjectStore:
      destinationPath: s3://%s/archive
      endpointURL: %s
      s3Credentials:
        accessKeyId: {name: store-creds, key: ACCESS_KEY_ID}
        secretAccessKey: {name: store-creds, key: ACCESS_SECRET_KEY}
---
apiVersion: v1
kind: Secret
metadata: {name: store-creds, namespace: db}
stringData: {ACCESS_KEY_ID: %s, ACCESS_SECRET_KEY: %s}
`, bucket, endpoint, e.srv.Get("MINIO_ROOT_USER"), e.srv.Get("MINIO_ROOT_PASSWORD"))
}

// A source with 10,000 backup folders: a bounded number of requests and a short message.
func TestHugeCatalogIsSummarized(t *testing.T) {
	t.Parallel()
	e, _, bucket := minioBucket(t)
	proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
	var lists atomic.Int64
	proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
		q := r.URL.Query()
		if q.Get("list-type") != "2" || !strings.HasSuffix(q.Get("prefix"), "/base/") {
			return false
		}
		page := 0
		fmt.Sscanf(q.Get("continuation-token"), "p%d", &page)
		lists.Add(1)
		var b strings.Builder
		fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>%s</Name>`, bucket)
		for i := page * 1000; i < (page+1)*1000; i++ {
			fmt.Fprintf(&b, "<CommonPrefixes><Prefix>%s2026%04dT000000/</Prefix></CommonPrefixes>", q.Get("prefix"), i)
		}
		if page < 9 {
			fmt.Fprintf(&b, "<IsTruncated>true</IsTruncated><NextContinuationToken>p%d</NextContinuationToken>", page+1)
		}
		b.WriteString("</ListBucketResult>")
		w.Header().Set("Content-Type", "application/xml")
		io.WriteString(w, b.String())
		return true
	}
	r := testenv.Check(t, recoveryDoc(e, bucket, proxy.URL), "--timeout", "30s")
	tg := r.Target("db/pg/recovery-source/origin")
	if tg == nil {
		t.Fatalf("no target: %s", r.Stdout)
	}
	if tg.Requests > 100 {
		t.Errorf("%d requests", tg.Requests)
	}
	bc := r.CheckOf(tg.ID, "backups")
	if len(bc.Message) > 2000 || !strings.Contains(bc.Message, "10000 (backup.info read for the newest") || !strings.Contains(bc.Message, "and ") {
		t.Errorf("backups (%d bytes): %.600s", len(bc.Message), bc.Message)
	}
}

// Azure answering a listing with 200 and an empty body is a failure or an empty listing, never an
// internal error.
func TestAzureEmptyListingBody(t *testing.T) {
	t.Parallel()
	_, az := azurite(t, false)
	proxy := testenv.NewFaultProxy(t, az.Endpoint)
	proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Query().Get("comp") != "list" {
			return false
		}
		w.WriteHeader(http.StatusOK)
		return true
	}
	cs := strings.Replace(az.ConnectionString(), az.Endpoint, proxy.URL, 1)
	dest := strings.Replace(az.Destination("pg-backups"), az.Endpoint, proxy.URL, 1)
	r := testenv.Check(t, azCluster(dest, connStrCreds, map[string]string{"AZURE_CONNECTION_STRING": cs}, ""), "--timeout", "10s")
	for _, c := range r.Matrix.Targets[0].Checks {
		if strings.Contains(c.Message, "internal error") || strings.Contains(c.Message, "nil pointer") {
			t.Errorf("%s: %s", c.ID, c.Message)
		}
	}
}

// A reason phrase carrying terminal escapes reaches the verbose log sanitized.
func TestVerboseLogIsSanitized(t *testing.T) {
	t.Parallel()
	ln := listen(t, func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(buf)
		io.WriteString(c, "HTTP/1.1 403 Forbidden\x1b]0;pwned\x07\x1b[2J\u009b31m\r\nContent-Type: application/xml\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	})
	cl := s3Cluster{bucket: "b", prefix: "p", endpoint: "http://" + ln.Addr().String(), key: "k", secret: "s"}
	r := testenv.Check(t, cl.yaml(), "--timeout", "5s")
	for _, bad := range []string{"\x1b", "\u009b", "\x07"} {
		if strings.Contains(r.Stderr, bad) || strings.Contains(r.Stdout, bad) {
			t.Errorf("output carries %q:\n%q", bad, r.Stderr)
		}
	}
}

// serverNames that no store or client keeps as written are config failures (nothing written);
// a store refusing a write with 400 means nothing was written: no leftover is claimed.
func TestOddServerNames(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	for _, c := range []struct{ name, serverName, check string }{
		{"dot-dot", "../x", "config"},
		{"dot", ".", "config"},
		{"too long", strings.Repeat("s", 1100), "config"},
		{"inside base", "pg-old/base/20260101T000000", "config"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			before := testenv.Snapshot(t, mc, bucket)
			cl := e.root(bucket)
			cl.extra = fmt.Sprintf("      serverName: %q", c.serverName)
			r := testenv.Check(t, cl.yaml())
			if ch := r.CheckOf(backupTarget, c.check); ch.Status != "fail" {
				t.Errorf("%s: %+v", c.check, ch)
			}
			if d := testenv.Diff(before, testenv.Snapshot(t, mc, bucket)); d != "" || len(r.Matrix.Targets[0].Leftovers) != 0 {
				t.Errorf("written or claimed left behind: %q %v", d, r.Matrix.Targets[0].Leftovers)
			}
		})
	}
	t.Run("refused with 400", func(t *testing.T) {
		t.Parallel()
		proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
		proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPut && r.Method != http.MethodPost {
				return false
			}
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "<Error><Code>XMinioInvalidObjectName</Code><Message>Object name contains unsupported characters.</Message></Error>")
			return true
		}
		cl := e.root(bucket)
		cl.endpoint = proxy.URL
		r := testenv.Check(t, cl.yaml())
		if ch := r.CheckOf(backupTarget, "write"); ch.Status != "fail" {
			t.Errorf("write: %+v", ch)
		}
		if left := r.Matrix.Targets[0].Leftovers; len(left) != 0 {
			t.Errorf("a refused write is claimed left behind: %v", left)
		}
	})
}

// The Kubernetes API can hang: a Secret GET that never answers is bounded by --timeout.
func TestKubeAPIHangIsBounded(t *testing.T) {
	t.Parallel()
	cluster := `{"apiVersion":"postgresql.cnpg.io/v1","kind":"Cluster","metadata":{"name":"pg","namespace":"db"},"spec":{"backup":{"barmanObjectStore":{"destinationPath":"s3://b/p","endpointURL":"http://127.0.0.1:1","s3Credentials":{"accessKeyId":{"name":"s","key":"id"},"secretAccessKey":{"name":"s","key":"secret"}}}}}}`
	api := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/secrets/") {
			<-r.Context().Done() // never answers
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, cluster)
	}))
	kc := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: %q}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: c\n  context: {cluster: c, user: u, namespace: db}\ncurrent-context: c\n", api)
	path := t.TempDir() + "/kubeconfig"
	if err := writeFile(path, kc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan testenv.Result, 1)
	start := time.Now()
	go func() {
		done <- testenv.Run(t, "", "check", "-o", "json", "--kubeconfig", path, "--cluster", "pg", "--timeout", "3s")
	}()
	select {
	case r := <-done:
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("verdict after %s (--timeout 3s)", took)
		}
		if ch := r.CheckOf("db/pg/backup", "credentials"); ch.Status != "fail" {
			t.Errorf("credentials: %+v\n%s%s", ch, r.Stdout, r.Stderr)
		}
	case <-ctx.Done():
		t.Fatal("the run hangs on a Secret GET that never answers")
	}
}

func sasAll() sas.ContainerPermissions {
	return sas.ContainerPermissions{Read: true, List: true, Write: true, Create: true, Add: true, Delete: true}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// `check -v 2>&1 >/dev/null | head -3`: the log's reader goes away; the process does not die of
// SIGPIPE, finishes, cleans up and reports on stdout.
func TestClosedStderrPipe(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	before := testenv.Snapshot(t, mc, bucket)
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	writeFile(path, e.root(bucket).yaml())
	cmd := exec.Command(testenv.Binary(t), "check", "-f", path, "-o", "json", "-v")
	var out bytes.Buffer
	cmd.Stdout = &out
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	buf := make([]byte, 64)
	pr.Read(buf) // the first log line arrives, then the reader is gone
	pr.Close()
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() != 0 {
		t.Errorf("exit %d (killed by a signal: %v)", ee.ExitCode(), ee.ProcessState)
	}
	if m := matrixOf(t, &out); len(m.Targets) != 1 || m.Failed() {
		t.Errorf("report: %s", out.String())
	}
	if d := testenv.Diff(before, testenv.Snapshot(t, mc, bucket)); d != "" {
		t.Errorf("left behind: %s", d)
	}
}

// A closed stdout is an error that says so (exit 1), never a silent exit 0 nor "bad input".
func TestClosedStdout(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	writeFile(path, "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg}\nspec:\n  backup:\n    barmanObjectStore:\n      destinationPath: s3://b/p\n      s3Credentials: {inheritFromIAMRole: true}\n")
	cmd := exec.Command(testenv.Binary(t), "check", "--offline", "-f", path)
	pr, pw, _ := os.Pipe()
	pr.Close() // nobody reads stdout
	cmd.Stdout = pw
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	pw.Close()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 || !strings.Contains(errb.String(), "cannot write the report") {
		t.Errorf("exit %v, stderr %q", err, errb.String())
	}
}

// SIGINT while the manifest is still being read (-f - with an open stdin, or a FIFO): the process
// stops at once, saying so, instead of waiting for the input to end.
func TestInterruptWhileReadingInput(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-f", "-"}, {"-f", fifo}} {
		t.Run(args[1], func(t *testing.T) {
			cmd := exec.Command(testenv.Binary(t), append([]string{"check"}, args...)...)
			stdin, _ := cmd.StdinPipe() // never written, never closed until the end
			defer stdin.Close()
			var errb bytes.Buffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			cmd.Process.Signal(syscall.SIGINT)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(errb.String(), "interrupted by SIGINT while reading") {
					t.Errorf("exit %v, stderr %q", err, errb.String())
				}
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				t.Fatal("SIGINT was swallowed while reading the input")
			}
		})
	}
}

// SIGTERM at moments when requests of 100 targets are in flight (a write, a multipart completion):
// whatever stays in the bucket is named in the report, nothing more.
func TestSignalDuringFleetNamesEveryLeftover(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Secret\nmetadata: {name: c, namespace: f}\nstringData: {id: %s, secret: %s}\n", e.srv.Get("MINIO_ROOT_USER"), e.srv.Get("MINIO_ROOT_PASSWORD"))
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "---\napiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg-%d, namespace: f}\nspec:\n  backup:\n    barmanObjectStore:\n      destinationPath: s3://%s/p\n      endpointURL: %s\n      s3Credentials:\n        accessKeyId: {name: c, key: id}\n        secretAccessKey: {name: c, key: secret}\n", i, bucket, e.srv.Get("MINIO_ENDPOINT"))
	}
	for _, delay := range []time.Duration{300, 450, 600} {
		before := testenv.Snapshot(t, mc, bucket)
		cmd, out, _ := runBinary(t, b.String())
		time.Sleep(delay * time.Millisecond)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		m := matrixOf(t, out)
		named := map[string]bool{}
		for _, tg := range m.Targets {
			for _, l := range tg.Leftovers {
				k := l
				for _, p := range []string{"possibly an incomplete multipart upload of ", "incomplete multipart upload of "} {
					if strings.HasPrefix(l, p) {
						k = "(incomplete upload) " + strings.TrimSuffix(strings.TrimPrefix(l, p), " (its creation was not confirmed)")
					}
				}
				named["+ "+k] = true
			}
		}
		for _, d := range strings.Split(testenv.Diff(before, testenv.Snapshot(t, mc, bucket)), "\n") {
			if d != "" && !named[d] {
				t.Errorf("SIGTERM after %s: left in the bucket but not named: %s", delay*time.Millisecond, d)
			}
		}
	}
}
