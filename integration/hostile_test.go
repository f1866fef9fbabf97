package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

	"golang.org/x/net/dns/dnsmessage"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

const probeMarker = "cnpg-preflight-probe-"

// runBinary starts the real binary on a manifest; it returns the running command and its output.
func runBinary(t *testing.T, manifest string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Binary(t), append([]string{"check", "-f", path, "-o", "json"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out, &errb
}

func matrixOf(t *testing.T, out *bytes.Buffer) *report.Matrix {
	t.Helper()
	var m report.Matrix
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	return &m
}

// A signal while a probe is in flight (after write, before delete): the process exits promptly
// with a partial report, and no probe object is left.
func TestInterruptedRunLeavesNothing(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			e, mc, bucket := minioBucket(t)
			before := testenv.Snapshot(t, mc, bucket)
			proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
			held := make(chan struct{}, 1)
			proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodGet && strings.Contains(r.URL.Path, probeMarker) { // the read-back
					held <- struct{}{}
					<-r.Context().Done()
					return true
				}
				return false
			}
			c := e.root(bucket)
			c.endpoint = proxy.URL
			cmd, out, errb := runBinary(t, c.yaml(), "--verbose")
			select {
			case <-held:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("the read-back never came\n%s", errb)
			}
			inFlight := testenv.Diff(before, testenv.Snapshot(t, mc, bucket))
			if !strings.Contains(inFlight, probeMarker) {
				t.Errorf("the probe object should exist while the read is held: %q", inFlight)
			}
			start := time.Now()
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			took := time.Since(start)
			if took > 3*time.Second {
				t.Errorf("exit took %s after %s", took, sig)
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Errorf("exit: %v, want code 1", err)
			}
			m := matrixOf(t, out)
			want := "interrupted by " + map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM", syscall.SIGHUP: "SIGHUP", syscall.SIGQUIT: "SIGQUIT"}[sig]
			if m.Interrupted != want {
				t.Errorf("interrupted = %q, want %q", m.Interrupted, want)
			}
			if rc := m.Targets[0].Check("read"); rc == nil || rc.Status != report.Fail || !strings.Contains(rc.Message, want+" during read") {
				t.Errorf("read: %+v", rc)
			}
			if d := testenv.Diff(before, testenv.Snapshot(t, mc, bucket)); d != "" || len(m.Targets[0].Leftovers) != 0 {
				t.Errorf("left behind: %s %v\n%s", d, m.Targets[0].Leftovers, errb)
			}
		})
	}
}

// The object store dies between write and delete: the report names the leftover exactly.
func TestServerDeathNamesLeftover(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	before := testenv.Snapshot(t, mc, bucket)
	proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
	var dead atomic.Bool
	proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
		if dead.Load() {
			testenv.Drop(w)
			return true
		}
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, probeMarker) {
			// forward the write, then die
			rec := &passThrough{ResponseWriter: w}
			defer func() { dead.Store(true); proxy.Kill() }()
			return rec.forward(e.srv.Get("MINIO_ENDPOINT"), r)
		}
		return false
	}
	c := e.root(bucket)
	c.endpoint = proxy.URL
	r := testenv.Check(t, c.yaml(), "--timeout", "20s")
	m := r.Matrix
	if m == nil || len(m.Targets) != 1 {
		t.Fatalf("no matrix: %s %s", r.Stdout, r.Stderr)
	}
	diff := testenv.Diff(before, testenv.Snapshot(t, mc, bucket))
	left := m.Targets[0].Leftovers
	// Every leftover is named exactly; an upload whose creation was never confirmed is named as
	// "possibly" (it may or may not exist), every other name must be real.
	named := map[string]bool{}
	for _, l := range left {
		switch {
		case strings.HasPrefix(l, "possibly an incomplete multipart upload of "):
			k := strings.TrimSuffix(strings.TrimPrefix(l, "possibly an incomplete multipart upload of "), " (its creation was not confirmed)")
			named["+ (incomplete upload) "+k] = true
		case strings.HasPrefix(l, "incomplete multipart upload of "):
			k := strings.TrimPrefix(l, "incomplete multipart upload of ")
			named["+ (incomplete upload) "+k] = true
			if !strings.Contains(diff, "(incomplete upload) "+k) {
				t.Errorf("named %q, which is not in the bucket", l)
			}
		default:
			named["+ "+l] = true
			if !strings.Contains(diff, "+ "+l) {
				t.Errorf("named %q, which is not in the bucket", l)
			}
		}
	}
	for _, d := range strings.Split(diff, "\n") {
		if !named[d] {
			t.Errorf("left in the bucket but not named: %s (report: %v)", d, left)
		}
	}
	if len(left) == 0 {
		t.Fatalf("no leftover named; bucket diff %q", diff)
	}
	for _, l := range left {
		for _, p := range []string{"incomplete multipart upload of ", "possibly an incomplete multipart upload of "} {
			if strings.HasPrefix(l, p) {
				mc.RemoveIncompleteUpload(t.Context(), bucket, strings.TrimSuffix(strings.TrimPrefix(l, p), " (its creation was not confirmed)"))
			}
		}
	}
	if r.Code != 1 || !strings.Contains(r.Stdout, strings.Split(left[0], " (")[0]) {
		t.Errorf("exit %d; the report must name %s", r.Code, left[0])
	}
}

// passThrough forwards one request to the real server and copies the answer.
type passThrough struct{ http.ResponseWriter }

func (p *passThrough) forward(target string, r *http.Request) bool {
	req, _ := http.NewRequest(r.Method, target+r.URL.RequestURI(), r.Body)
	req.Header = r.Header.Clone()
	req.Host = r.Host
	req.ContentLength = r.ContentLength
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		testenv.Drop(p.ResponseWriter)
		return true
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		p.Header()[k] = v
	}
	p.WriteHeader(resp.StatusCode)
	buf := new(bytes.Buffer)
	buf.ReadFrom(resp.Body)
	p.Write(buf.Bytes())
	return true
}

// 503 SlowDown and 500 a few times, then success: bounded retries with backoff get through.
func TestRetriesThroughFaultProxy(t *testing.T) {
	t.Parallel()
	e, mc, bucket := minioBucket(t)
	proxy := testenv.NewFaultProxy(t, e.srv.Get("MINIO_ENDPOINT"))
	var faults atomic.Int64
	seen := map[string]int{}
	var mu = make(chan struct{}, 1)
	proxy.Rule = func(w http.ResponseWriter, r *http.Request) bool {
		mu <- struct{}{}
		k := r.Method + " " + r.URL.Path
		seen[k]++
		n := seen[k]
		<-mu
		if n <= 2 && r.Header.Get("Authorization") != "" {
			faults.Add(1)
			code, errCode := http.StatusServiceUnavailable, "SlowDown"
			if n == 2 {
				code, errCode = http.StatusInternalServerError, "InternalError"
			}
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(code)
			if r.Method != http.MethodHead {
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected</Message></Error>`, errCode)
			}
			return true
		}
		return false
	}
	c := e.root(bucket)
	c.endpoint = proxy.URL
	before := testenv.Snapshot(t, mc, bucket)
	r := testenv.Check(t, c.yaml())
	wantStatuses(t, r, backupTarget, allPass)
	if faults.Load() < 10 {
		t.Errorf("only %d faults injected", faults.Load())
	}
	if d := testenv.Diff(before, testenv.Snapshot(t, mc, bucket)); d != "" {
		t.Errorf("left behind: %s", d)
	}
}

// Dead and slow endpoints: with --timeout 3s every verdict arrives within 4 s and names the stage.
func TestDeadAndSlowEndpoints(t *testing.T) {
	t.Parallel()
	hang := listen(t, func(c net.Conn) { time.Sleep(30 * time.Second); c.Close() })
	stall := httpServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusOK)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}))
	refused := listen(t, nil)
	refused.Close()
	tlsHang := listen(t, func(c net.Conn) { time.Sleep(30 * time.Second); c.Close() })
	cases := []struct {
		name, endpoint, check, want string
	}{
		{"connection refused", "http://" + refused.Addr().String(), "endpoint", "connection refused"},
		{"accepts, never answers", "http://" + hang.Addr().String(), "endpoint", "did not answer an HTTP request"},
		{"TLS handshake hangs", "https://" + tlsHang.Addr().String(), "endpoint", "timed out"},
		{"headers, then stall", stall, "list", "during list"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cl := s3Cluster{bucket: "b", prefix: "p", endpoint: c.endpoint, key: "k", secret: "s"}
			start := time.Now()
			r := testenv.Check(t, cl.yaml(), "--timeout", "3s")
			took := time.Since(start)
			if took > 4*time.Second {
				t.Errorf("verdict after %s (timeout 3s)", took)
			}
			if ch := r.CheckOf(backupTarget, c.check); ch.Status != "fail" || !strings.Contains(ch.Message, c.want) {
				t.Errorf("%s: %+v\n%s", c.check, ch, r.Stdout)
			}
		})
	}
}

func listen(t *testing.T, handle func(net.Conn)) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if handle != nil {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go handle(c)
			}
		}()
	}
	return ln
}

func httpServer(t *testing.T, h http.Handler) string {
	ln := listen(t, nil)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// A host name that does not resolve (answered NXDOMAIN by a DNS server on loopback, so no query
// leaves the machine; the run's resolver is injected).
func TestDNSDoesNotResolve(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go serveNXDOMAIN(pc)
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
	cl := s3Cluster{bucket: "b", prefix: "p", endpoint: "http://no-such-host.preflight.test:9000", key: "k", secret: "s"}
	start := time.Now()
	r := testenv.CheckWith(t, testenv.Opts{Stdin: cl.yaml(), Resolver: resolver}, "--timeout", "3s")
	if ch := r.CheckOf(backupTarget, "endpoint"); ch.Status != "fail" || !strings.Contains(ch.Message, `cannot resolve host "no-such-host.preflight.test"`) {
		t.Errorf("endpoint: %+v", ch)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("verdict after %s", took)
	}
}

func serveNXDOMAIN(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RCode: dnsmessage.RCodeNameError, RecursionAvailable: true})
		b.StartQuestions()
		b.Question(q)
		msg, err := b.Finish()
		if err == nil {
			pc.WriteTo(msg, addr)
		}
	}
}
