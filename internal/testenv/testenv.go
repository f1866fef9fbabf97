// Package testenv is the integration tests' support: the real servers started by
// scripts/servers.sh, an independent minio-go client, the CLI run in-process, and barman-cloud.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cnpg-preflight/cnpg-preflight/cli"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// Servers are the endpoints and root credentials from servers.env.
type Servers struct {
	env map[string]string
}

// Get returns a servers.env value.
func (s *Servers) Get(k string) string { return s.env[k] }

// Load reads $CNPG_PREFLIGHT_SERVERS. Without it the test is skipped, unless
// CNPG_PREFLIGHT_INTEGRATION=1 (make test), where a missing server is a failure.
func Load(t testing.TB) *Servers {
	t.Helper()
	path := os.Getenv("CNPG_PREFLIGHT_SERVERS")
	required := os.Getenv("CNPG_PREFLIGHT_INTEGRATION") == "1"
	if path == "" {
		if required {
			t.Fatal("CNPG_PREFLIGHT_INTEGRATION=1 but CNPG_PREFLIGHT_SERVERS is not set: run scripts/servers.sh start (make test does)")
		}
		t.Skip("integration servers not configured: run `make test` (or scripts/servers.sh start and set CNPG_PREFLIGHT_SERVERS)")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("servers env %s: %v", path, err)
	}
	defer f.Close()
	s := &Servers{env: map[string]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			s.env[k] = v
		}
	}
	return s
}

// RequireBinary fails (make test) or skips when a reference binary is missing.
func RequireBinary(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CNPG_PREFLIGHT_INTEGRATION") == "1" {
			t.Fatalf("%s missing: run scripts/install-deps.sh", path)
		}
		t.Skipf("%s missing", path)
	}
}

// MinIO returns an independent minio-go client for an endpoint host (no scheme). With a CA file
// the client trusts it (TLS endpoints).
func MinIO(t testing.TB, host, user, pass string, caFile ...string) *minio.Client {
	t.Helper()
	opts := &minio.Options{Creds: credentials.NewStaticV4(user, pass, ""), Region: "us-east-1"}
	if len(caFile) > 0 {
		pem, err := os.ReadFile(caFile[0])
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		opts.Secure = true
		opts.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	c, err := minio.New(host, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Unique returns a short random name with a prefix.
func Unique(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// NewBucket creates a fresh bucket and removes it (with its content) when the test ends.
func NewBucket(t testing.TB, c *minio.Client) string {
	t.Helper()
	name := Unique("pf-")
	ctx := context.Background()
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	t.Cleanup(func() { RemoveBucket(c, name) })
	return name
}

// RemoveBucket deletes every object of a bucket and the bucket.
func RemoveBucket(c *minio.Client, name string) {
	ctx := context.Background()
	for o := range c.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err == nil {
			c.RemoveObject(ctx, name, o.Key, minio.RemoveObjectOptions{})
		}
	}
	for u := range c.ListIncompleteUploads(ctx, name, "", true) {
		if u.Err == nil {
			c.RemoveIncompleteUpload(ctx, name, u.Key)
		}
	}
	c.RemoveBucket(ctx, name)
}

// Snapshot lists every object (key → ETag) and every incomplete multipart upload of a bucket.
func Snapshot(t testing.TB, c *minio.Client, bucket string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			if minio.ToErrorResponse(o.Err).Code == "NoSuchBucket" {
				return out
			}
			t.Fatalf("snapshot %s: %v", bucket, o.Err)
		}
		out[o.Key] = o.ETag
	}
	for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err == nil {
			out["(incomplete upload) "+u.Key] = u.UploadID
		}
	}
	return out
}

// Diff describes the difference between two snapshots ("" when equal).
func Diff(before, after map[string]string) string {
	var d []string
	for k, v := range after {
		if w, ok := before[k]; !ok {
			d = append(d, "+ "+k)
		} else if w != v {
			d = append(d, "~ "+k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			d = append(d, "- "+k)
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

// Put writes an object with the independent client.
func Put(t testing.TB, c *minio.Client, bucket, key string, data []byte) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// Result is one in-process run of the CLI.
type Result struct {
	Code           int
	Stdout, Stderr string
	Matrix         *report.Matrix // with -o json
}

// Opts configure an in-process run of the CLI.
type Opts struct {
	Stdin    string
	Env      map[string]string // the run's environment, added to the servers' (STORAGE_EMULATOR_HOST)
	Resolver *net.Resolver     // host name resolution (nil: the system's)
}

var serversEnv = sync.OnceValue(func() map[string]string {
	env := map[string]string{}
	if f, err := os.Open(os.Getenv("CNPG_PREFLIGHT_SERVERS")); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				env[k] = v
			}
		}
	}
	return env
})

// Run runs cnpg-preflight in-process with args and stdin. Its environment points the GCS provider
// at the emulator (STORAGE_EMULATOR_HOST), nothing else.
func Run(t testing.TB, stdin string, args ...string) Result {
	t.Helper()
	return RunWith(t, Opts{Stdin: stdin}, args...)
}

// RunWith runs cnpg-preflight in-process with injected streams, environment and resolver.
func RunWith(t testing.TB, o Opts, args ...string) Result {
	t.Helper()
	env := map[string]string{}
	if h := serversEnv()["GCS_EMULATOR_HOST"]; h != "" {
		env["STORAGE_EMULATOR_HOST"] = h
	}
	for k, v := range o.Env {
		env[k] = v
	}
	var out, errb bytes.Buffer
	f := cli.NewFactory(&cli.IOStreams{In: strings.NewReader(o.Stdin), Out: &out, ErrOut: &errb, Getenv: func(k string) string { return env[k] }})
	f.Resolver = o.Resolver
	code := cli.MainContext(context.Background(), f, args)
	r := Result{Code: code, Stdout: out.String(), Stderr: errb.String()}
	if strings.HasPrefix(strings.TrimSpace(r.Stdout), "{") {
		var m report.Matrix
		if err := json.Unmarshal(out.Bytes(), &m); err != nil {
			t.Fatalf("bad JSON output: %v\n%s", err, r.Stdout)
		}
		r.Matrix = &m
	}
	return r
}

// Check runs `check -f - -o json --verbose` on a manifest and sweeps every output format and the
// verbose log for the manifest's secret values.
func Check(t testing.TB, manifest string, extra ...string) Result {
	t.Helper()
	return CheckWith(t, Opts{Stdin: manifest}, extra...)
}

// CheckWith is Check with injected options (o.Stdin is the manifest).
func CheckWith(t testing.TB, o Opts, extra ...string) Result {
	t.Helper()
	r := RunWith(t, o, append([]string{"check", "-f", "-", "-o", "json", "--verbose", "--timeout", "30s"}, extra...)...)
	Sweep(t, o.Stdin, r)
	return r
}

// Statuses returns "id=status" for each check of the target with id, in order.
func (r Result) Statuses(target string) string {
	if r.Matrix == nil {
		return "(no matrix)"
	}
	for _, tg := range r.Matrix.Targets {
		if tg.ID == target {
			var s []string
			for _, c := range tg.Checks {
				s = append(s, c.ID+"="+string(c.Status))
			}
			return strings.Join(s, " ")
		}
	}
	return "(no target " + target + ")"
}

// Target returns the matrix row with id, or nil.
func (r Result) Target(id string) *report.Target {
	if r.Matrix != nil {
		for _, tg := range r.Matrix.Targets {
			if tg.ID == id {
				return tg
			}
		}
	}
	return nil
}

// CheckOf returns one check of a target.
func (r Result) CheckOf(target, id string) report.Check {
	if r.Matrix != nil {
		for _, tg := range r.Matrix.Targets {
			if tg.ID == target {
				if c := tg.Check(id); c != nil {
					return *c
				}
			}
		}
	}
	return report.Check{}
}

// BarmanRoot is the Debian 13 root holding the reference client, barman-cloud 3.13 with boto3 1.37
// and azure-storage-blob 12.26 (scripts/build-barman.sh), as mounted by scripts/servers.sh with the
// machine's /tmp inside it. A missing root fails under make test and skips otherwise.
func BarmanRoot(t testing.TB) string {
	t.Helper()
	root := serversEnv()["BARMAN_ROOT"]
	if root == "" {
		if os.Getenv("CNPG_PREFLIGHT_INTEGRATION") == "1" {
			t.Fatal("no BARMAN_ROOT in servers.env: run scripts/build-barman.sh, then scripts/servers.sh start")
		}
		t.Skip("barman 3.13 root not mounted (scripts/build-barman.sh, scripts/servers.sh start)")
	}
	RequireBinary(t, root+"/usr/bin/barman-cloud-check-wal-archive")
	return root
}

// barmanCommand is the command line that runs a barman-cloud command of the 3.13 root: chroot as
// root, or inside a user namespace (unshare -r) for an unprivileged user such as postgres.
func barmanCommand(root, name string, asRoot bool) []string {
	cmd := []string{"/usr/sbin/chroot", root, "/usr/bin/" + name}
	if !asRoot {
		cmd = append([]string{"/usr/bin/unshare", "-r"}, cmd...)
	}
	return cmd
}

// Barman runs a barman-cloud 3.13 command (the reference client) with env added to a clean
// environment. Files it reads or writes must be under /tmp (visible at the same path in the root).
func Barman(t testing.TB, env map[string]string, name string, args ...string) (int, string) {
	t.Helper()
	cmd := barmanCommand(BarmanRoot(t), name, os.Geteuid() == 0)
	return runBarman(t, env, append(cmd, args...))
}

// Barman34 runs Debian 12's barman-cloud 3.4, kept only to show where it differs from 3.13.
func Barman34(t testing.TB, env map[string]string, name string, args ...string) (int, string) {
	t.Helper()
	path := "/usr/bin/" + name
	RequireBinary(t, path)
	return runBarman(t, env, append([]string{path}, args...))
}

func runBarman(t testing.TB, env map[string]string, argv []string) (int, string) {
	t.Helper()
	// a safeguard only: barman 3.13 takes ~85 s of Azure retries to give up on an untrusted certificate
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/tmp", "LC_ALL=C.UTF-8"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", argv, err)
	}
	return code, string(out)
}

// Get reads an object with the independent client.
func Get(t testing.TB, c *minio.Client, bucket, key string) []byte {
	t.Helper()
	o, err := c.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return b
}

// Delete removes an object with the independent client.
func Delete(t testing.TB, c *minio.Client, bucket, key string) {
	t.Helper()
	if err := c.RemoveObject(context.Background(), bucket, key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
}
