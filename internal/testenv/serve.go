package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/cli"
)

// ToolsDir is where scripts/install-deps.sh puts the pinned tools (CNPG_PREFLIGHT_TOOLS).
func ToolsDir() string {
	if d := os.Getenv("CNPG_PREFLIGHT_TOOLS"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "cnpg-preflight", "tools")
}

// MC returns a runner of the mc client (the pinned one of the tools folder) with the MinIO root
// identity on the suite's MinIO under the alias "local", in a config directory of the test's own
// (MINIO_ENDPOINT is a process or a container, depending on the server mode).
func MC(t testing.TB, srv *Servers) func(args ...string) string {
	t.Helper()
	bin := filepath.Join(ToolsDir(), "bin", "mc")
	RequireBinary(t, bin)
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--quiet", "--no-color"}, args...)...)
		cmd.Env = append(os.Environ(), "MC_CONFIG_DIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mc %s: %v\n%s", args[0], err, out)
		}
		return string(out)
	}
	run("alias", "set", "local", srv.Get("MINIO_ENDPOINT"), srv.Get("MINIO_ROOT_USER"), srv.Get("MINIO_ROOT_PASSWORD"))
	return run
}

// MinIOUser makes a MinIO user of the test's own with a policy granting every S3 action on one
// bucket (named after the user); both are removed when the test ends. It returns the user's
// key, secret and the policy name (detach it to take the access away, attach it to give it back).
func MinIOUser(t testing.TB, mc func(...string) string, bucket string) (key, secret, policy string) {
	t.Helper()
	key, secret, policy = Unique("pf-user-"), Unique("pf-secret-")+Unique(""), Unique("pf-policy-")
	doc := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"]}]}`, bucket, bucket)
	path := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	mc("admin", "policy", "create", "local", policy, path)
	mc("admin", "user", "add", "local", key, secret)
	mc("admin", "policy", "attach", "local", policy, "--user", key)
	t.Cleanup(func() {
		mc("admin", "user", "remove", "local", key)
		mc("admin", "policy", "remove", "local", policy)
	})
	return key, secret, policy
}

// syncBuffer collects a stream written by one goroutine and read by another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Serve is `cnpg-preflight serve` running in-process.
type Serve struct {
	URL    string // http://127.0.0.1:PORT
	stderr *syncBuffer
	cancel context.CancelCauseFunc
	done   chan int
	code   int
	once   sync.Once
}

// StartServe runs serve with args (plus --listen 127.0.0.1:0) until Stop or the end of the test,
// and waits until it listens.
func StartServe(t testing.TB, args ...string) *Serve {
	t.Helper()
	env := map[string]string{"POD_NAME": "cnpg-preflight-test"}
	if h := serversEnv()["GCS_EMULATOR_HOST"]; h != "" {
		env["STORAGE_EMULATOR_HOST"] = h
	}
	s := &Serve{stderr: &syncBuffer{}, done: make(chan int, 1)}
	f := cli.NewFactory(&cli.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: s.stderr, Getenv: func(k string) string { return env[k] }})
	ctx, cancel := context.WithCancelCause(context.Background())
	s.cancel = cancel
	go func() {
		s.done <- cli.MainContext(ctx, f, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...))
	}()
	t.Cleanup(func() { s.Stop() })
	addr := regexp.MustCompile(`on (127\.0\.0\.1:\d+);`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := addr.FindStringSubmatch(s.stderr.String()); m != nil {
			s.URL = "http://" + m[1]
			return s
		}
		select {
		case code := <-s.done:
			t.Fatalf("serve exited with %d:\n%s", code, s.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve does not listen:\n%s", s.stderr.String())
	return nil
}

// Log is what serve wrote to stderr so far.
func (s *Serve) Log() string { return s.stderr.String() }

// Stop ends serve as a signal would and returns its exit code (-1 when it did not stop within 10 s).
func (s *Serve) Stop() int {
	s.once.Do(func() {
		s.cancel(fmt.Errorf("interrupted by SIGTERM"))
		select {
		case s.code = <-s.done:
		case <-time.After(10 * time.Second):
			s.code = -1
		}
	})
	return s.code
}

// Get fetches a path of serve's HTTP server.
func (s *Serve) Get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	return resp.StatusCode, string(b)
}

// Prometheus is a real Prometheus server (Debian's package) scraping targets every second.
type Prometheus struct {
	URL string
	cmd *exec.Cmd
}

// StartPrometheus starts Prometheus on a free loopback port with its own data directory,
// scraping targets (host:port) every second with honor_labels; it is stopped when the test ends.
func StartPrometheus(t testing.TB, targets ...string) *Prometheus {
	t.Helper()
	bin := "/usr/bin/prometheus"
	RequireBinary(t, bin)
	dir := t.TempDir()
	conf := fmt.Sprintf("global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\nscrape_configs:\n- job_name: cnpg-preflight\n  honor_labels: true\n  static_configs:\n  - targets: [%s]\n",
		strings.Join(targets, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--storage.tsdb.retention.time=1h", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Prometheus{URL: "http://" + addr, cmd: cmd}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		log.Close()
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.URL + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Fatalf("prometheus exited:\n%s", b)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("prometheus is not ready after 60 s")
	return nil
}

// Sample is one series of an instant query's result.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant query through the HTTP API (/api/v1/query).
func (p *Prometheus) Query(t testing.TB, expr string) []Sample {
	t.Helper()
	resp, err := http.Get(p.URL + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v %s", expr, err, r.Error)
	}
	var out []Sample
	for _, s := range r.Data.Result {
		v, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		out = append(out, Sample{Metric: s.Metric, Value: v})
	}
	return out
}

// WaitFor polls cond every 100 ms until it holds or d passes; it reports whether it held and when.
func WaitFor(d time.Duration, cond func() bool) (bool, time.Duration) {
	start := time.Now()
	for {
		if cond() {
			return true, time.Since(start)
		}
		if time.Since(start) > d {
			return false, time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
