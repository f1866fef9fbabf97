package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tinyproxy is a real HTTP proxy (Debian's tinyproxy, installed by scripts/install-deps.sh)
// started for one test on a free loopback port. Only destinations whose host matches one of the
// allow patterns (extended regular expressions) are let through; the others get "403 Filtered".
type Tinyproxy struct {
	URL string // http://127.0.0.1:PORT
	log string
}

// StartTinyproxy starts a tinyproxy of the test's own; it is stopped when the test ends.
func StartTinyproxy(t testing.TB, allow ...string) *Tinyproxy {
	t.Helper()
	bin := filepath.Join(ToolsDir(), "bin", "tinyproxy")
	RequireBinary(t, bin)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p := &Tinyproxy{URL: fmt.Sprintf("http://127.0.0.1:%d", port), log: filepath.Join(dir, "tinyproxy.log")}
	filter := filepath.Join(dir, "filter")
	if err := os.WriteFile(filter, []byte(strings.Join(allow, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("Port %d\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\nAllow 127.0.0.1\nLogFile %q\nLogLevel Connect\nFilter %q\nFilterDefaultDeny Yes\nFilterType ere\n", port, p.log, filter)
	cf := filepath.Join(dir, "tinyproxy.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-d", "-c", cf)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("tinyproxy: %v", err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tinyproxy did not listen on %d:\n%s", port, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// Log is what the proxy logged so far.
func (p *Tinyproxy) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Connects counts the CONNECT requests to hostport the proxy received.
func (p *Tinyproxy) Connects(hostport string) int {
	return strings.Count(p.Log(), "CONNECT "+hostport+" HTTP/1.1")
}
