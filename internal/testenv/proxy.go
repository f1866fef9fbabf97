package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// FaultProxy is a loopback reverse proxy in front of a real server. Rule sees every request first
// and may answer it itself (return true) — fail it, hold it, or kill the "server".
type FaultProxy struct {
	URL  string
	Rule func(w http.ResponseWriter, r *http.Request) bool
	ln   net.Listener
	srv  *http.Server
	once sync.Once
}

// NewFaultProxy starts a proxy to target (scheme://host:port); the Host header is kept, so
// signatures made for the proxy's address stay valid.
func NewFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &FaultProxy{URL: "http://" + ln.Addr().String(), ln: ln}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.Rule != nil && p.Rule(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// Kill makes the "server" disappear: new connections are refused and open ones are dropped.
func (p *FaultProxy) Kill() {
	p.once.Do(func() {
		p.ln.Close()
		go p.srv.Close()
	})
}

// Drop closes the client connection of a request without an answer.
func Drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
		}
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary builds cnpg-preflight once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		_, dir := callerDir()
		root := filepath.Join(dir, "..", "..")
		dir, err := os.MkdirTemp("", "pf-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "cnpg-preflight")
		cmd := exec.CommandContext(context.Background(), "go", "build", "-tags", "disable_grpc_modules", "-o", binPath, "./cmd/cnpg-preflight")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatalf("building the binary: %v", binErr)
	}
	return binPath
}

// callerDir returns this package's directory.
func callerDir() (string, string) {
	_, file, _, _ := runtime.Caller(0)
	return file, filepath.Dir(file)
}
