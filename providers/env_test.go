package providers

import (
	"bufio"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The proxy a backup client picks, as botocore (urllib's rules) and requests apply the environment.
func TestProxyFor(t *testing.T) {
	cases := []struct {
		rules ProxyRules
		env   map[string]string
		url   string
		want  string
	}{
		{ProxyBotocore, map[string]string{"HTTPS_PROXY": "http://p:3128"}, "https://s3.example.com", "http://p:3128"},
		{ProxyBotocore, map[string]string{"https_proxy": "p:3128"}, "https://s3.example.com", "http://p:3128"}, // bare host:port
		{ProxyBotocore, map[string]string{"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:1"}, "https://h", "http://lower:1"},
		{ProxyBotocore, map[string]string{"HTTPS_PROXY": "http://upper:1", "https_proxy": ""}, "https://h", ""}, // empty lower case removes it
		{ProxyBotocore, map[string]string{"HTTP_PROXY": "http://p:1"}, "https://h", ""},                         // by scheme only
		{ProxyBotocore, map[string]string{"HTTP_PROXY": "http://p:1"}, "http://h:9000", "http://p:1"},
		{ProxyBotocore, map[string]string{"ALL_PROXY": "http://p:1"}, "https://h", ""}, // botocore ignores ALL_PROXY
		{ProxyRequests, map[string]string{"ALL_PROXY": "http://p:1"}, "https://h", "http://p:1"},
		{ProxyBotocore, map[string]string{"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, "https://h", ""},
		{ProxyBotocore, map[string]string{"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "https://s3.example.com", ""},
		{ProxyBotocore, map[string]string{"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".example.com"}, "https://example.com", ""}, // leading dot ignored
		{ProxyBotocore, map[string]string{"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "https://badexample.com", "http://p:1"},
		{ProxyRequests, map[string]string{"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "https://badexample.com", ""}, // requests: plain suffix
		{ProxyBotocore, map[string]string{"HTTPS_PROXY": "http://p:1", "no_proxy": "minio:9000"}, "https://minio:9000", ""},
		{ProxyBotocore, map[string]string{"HTTPS_PROXY": "http://p:1", "no_proxy": "minio:9001"}, "https://minio:9000", "http://p:1"}, // other port
		{ProxyBotocore, map[string]string{"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, "https://10.1.2.3", "http://p:1"},   // urllib: no CIDR
		{ProxyRequests, map[string]string{"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, "https://10.1.2.3", ""},
		{ProxyRequests, map[string]string{"HTTPS_PROXY": "http://p:1", "NO_PROXY": " a.com , 127.0.0.1 "}, "https://127.0.0.1:10001", ""},
	}
	for i, c := range cases {
		u, _ := url.Parse(c.url)
		p, err := c.rules.ProxyFor(c.env, u)
		got := ""
		if p != nil {
			got = p.String()
		}
		if err != nil || got != c.want {
			t.Errorf("%d: %v %s: got %q (%v), want %q", i, c.env, c.url, got, err, c.want)
		}
	}
	if Redacted(&url.URL{Scheme: "http", User: url.UserPassword("u", "secret"), Host: "p:1"}) != "http://p:1" {
		t.Error("proxy credentials shown")
	}
}

// connectProxy is a minimal CONNECT proxy: status "" tunnels, otherwise it answers with it.
func connectProxy(t *testing.T, status string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if status != "" {
					fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Length: 0\r\n\r\n", status)
					return
				}
				up, err := net.Dial("tcp", req.Host)
				if err != nil {
					fmt.Fprintf(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
					return
				}
				defer up.Close()
				fmt.Fprintf(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				go io.Copy(up, br)
				io.Copy(c, up)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// The endpoint probe goes through the proxy of the backup client's environment, and names the
// proxy when it refuses the tunnel or cannot be reached.
func TestProbeThroughProxy(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	u, _ := url.Parse(srv.URL)
	probe := func(proxy string) (EndpointReport, error) {
		n, err := NewNet(ca, NetOptions{Env: map[string]string{"HTTPS_PROXY": proxy}, Proxy: ProxyBotocore, Trust: Trust{Client: "botocore"}})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		return n.Probe(context.Background(), u)
	}
	rep, err := probe(connectProxy(t, ""))
	if err != nil || rep.Proxy == "" || rep.TLSVer == "" || !strings.Contains(rep.String(), "through the proxy") {
		t.Fatalf("tunnel: %v %+v", err, rep)
	}
	for status, want := range map[string]string{"403 Forbidden": "refused the tunnel (CONNECT)", "407 Proxy Authentication Required": "407"} {
		_, err := probe(connectProxy(t, status))
		var e *Error
		if !errors.As(err, &e) || !strings.HasPrefix(e.Msg, "the proxy's fault") || !strings.Contains(e.Msg, want) || e.Fix == "" {
			t.Errorf("%s: %v", status, err)
		}
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	if _, err := probe(dead); err == nil || !strings.HasPrefix(err.Error(), "the proxy's fault") || KindOf(err) != KindNetwork {
		t.Errorf("unreachable proxy: %v", err)
	}
	// NO_PROXY: straight to the endpoint, the proxy (dead) is not used
	n, _ := NewNet(ca, NetOptions{Env: map[string]string{"HTTPS_PROXY": dead, "NO_PROXY": "127.0.0.1"}, Proxy: ProxyBotocore, Trust: Trust{Client: "botocore"}})
	defer n.Close()
	if rep, err := n.Probe(context.Background(), u); err != nil || rep.Proxy != "" {
		t.Errorf("NO_PROXY: %v %+v", err, rep)
	}
	// the transport uses the proxy too (requests through the tunnel, TLS verified inside it)
	n2, _ := NewNet(ca, NetOptions{Env: map[string]string{"HTTPS_PROXY": connectProxy(t, "")}, Proxy: ProxyBotocore, Trust: Trust{Client: "botocore"}})
	defer n2.Close()
	resp, err := n2.Client.Get(srv.URL)
	if err != nil {
		t.Fatalf("request through the proxy: %v", err)
	}
	resp.Body.Close()
}

// Plain http:// endpoints go to the proxy in absolute form; a 403 from the proxy itself (no store
// request ID) is named as the proxy's, the store's own answers are not.
func TestHTTPThroughProxy(t *testing.T) {
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amz-Request-Id", "1")
		w.WriteHeader(http.StatusForbidden) // an S3 store's answer to an anonymous HEAD /
	}))
	defer store.Close()
	var seen []string
	deny := false
	px := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.RequestURI)
		if deny {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		r.RequestURI = ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer px.Close()
	u, _ := url.Parse(store.URL)
	n, _ := NewNet(nil, NetOptions{Env: map[string]string{"http_proxy": px.URL}, Proxy: ProxyRequests})
	defer n.Close()
	if rep, err := n.Probe(context.Background(), u); err != nil || rep.Proxy != px.URL {
		t.Fatalf("probe: %v %+v", err, rep)
	}
	resp, err := n.Client.Get(store.URL + "/bucket")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(seen) != 2 || !strings.HasPrefix(seen[1], "GET http://") {
		t.Errorf("requests seen by the proxy: %v", seen)
	}
	deny = true
	if _, err := n.Probe(context.Background(), u); err == nil || !strings.HasPrefix(err.Error(), "the proxy's fault") || !strings.Contains(err.Error(), "403") {
		t.Errorf("denied: %v", err)
	}
}
