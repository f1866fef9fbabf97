package providers

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
)

// Logf receives one line per HTTP request (method, host, path, status, duration; never the query
// string or headers, which may carry signatures). It is --verbose.
type Logf func(format string, args ...any)

// Net is one target's network stack: TLS roots (system + endpointCA), a dialer that records
// timings, and an HTTP transport that first reuses the connection the endpoint check opened, so
// that probing the endpoint costs no extra handshake.
type Net struct {
	TLS       *tls.Config
	Transport *http.Transport
	Client    *http.Client // never follows a redirect, caps every body (see guard)
	guard     *guard
	logf      Logf
	resolver  *net.Resolver
	trust     Trust
	bundle    *caBundle         // endpointCA; nil: Mozilla's roots (certifi), as barman-cloud without a bundle
	env       map[string]string // the backup client's environment (its *_PROXY variables)
	proxy     ProxyRules

	mu          sync.Mutex
	warm        map[string]net.Conn // addr -> established connection (TLS done for https)
	partialOnly bool                // a handshake verified only through a partial chain
	notAfter    time.Time           // the earliest expiry of a verified server certificate
	skew        time.Duration       // the endpoint's clock minus ours (see ClockSkew)
	skewOK      bool
}

// NetOptions configure a Net.
type NetOptions struct {
	Logf     Logf          // a line per request (--verbose); may be nil
	Resolver *net.Resolver // host name resolution; nil: net.DefaultResolver (tests use a loopback DNS server)
	Trust    Trust         // how the backup client verifies certificates (the provider's Info().TLS)
	// Env is the backup client's environment: its HTTPS_PROXY / HTTP_PROXY / NO_PROXY (any case)
	// are applied with the provider's Proxy rules. Never the process's own environment.
	Env   map[string]string
	Proxy ProxyRules
}

// NewNet builds a Net that verifies certificates the way the backup client does: against the
// PEM bundle ca only (endpointCA; the backup client then trusts nothing else), or Mozilla's roots
// (certifi) without one, with the provider's trust model (partial chains, strict mode).
func NewNet(ca []byte, o NetOptions) (*Net, error) {
	// Go's own verification is replaced by Trust.verify (VerifyConnection, see tlsFor).
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}, InsecureSkipVerify: true}
	var b *caBundle
	if len(ca) > 0 {
		var err error
		if b, err = parseBundle(ca); err != nil {
			return nil, err
		}
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	n := &Net{TLS: cfg, warm: map[string]net.Conn{}, logf: o.Logf, resolver: o.Resolver, trust: o.Trust, bundle: b, env: o.Env, proxy: o.Proxy}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: o.Resolver}
	n.Transport = &http.Transport{
		// The backup client's proxy, never this process's (http.ProxyFromEnvironment): plain
		// http:// requests go to it in absolute form; https:// ones through a CONNECT tunnel made
		// in DialTLSContext, so that the endpoint's certificate is verified as without a proxy.
		Proxy: func(r *http.Request) (*url.URL, error) {
			if r.URL.Scheme == "https" {
				return nil, nil
			}
			return n.proxy.ProxyFor(n.env, r.URL)
		},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if c := n.take(addr); c != nil {
				return c, nil
			}
			return dialer.DialContext(ctx, network, addr)
		},
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if c := n.take(addr); c != nil {
				return c, nil
			}
			var raw net.Conn
			p, err := n.proxyFor("https", addr)
			switch {
			case err != nil:
				return nil, err
			case p != nil:
				raw, err = n.tunnel(ctx, p, addr, nil)
			default:
				raw, err = dialer.DialContext(ctx, network, addr)
			}
			if err != nil {
				return nil, err
			}
			host, _, _ := net.SplitHostPort(addr)
			tc := tls.Client(raw, n.tlsFor(host))
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return tc, nil
		},
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        30 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  30 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: MaxResponseHeader,
		DisableCompression:     true, // ask for identity: never inflate what a server compressed
	}
	n.guard = &guard{n: n, inner: n.Transport}
	n.Client = &http.Client{Transport: n.guard, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return n, nil
}

// Requests is the number of HTTP requests sent through this Net.
func (n *Net) Requests() int64 { return min(n.guard.requests.Load(), MaxRequests) }

func (n *Net) tlsFor(host string) *tls.Config {
	c := n.TLS.Clone()
	c.ServerName = host
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		now := time.Now()
		if err := n.trust.verify(cs, host, n.bundle, now); err != nil {
			return err
		}
		if len(cs.PeerCertificates) > 0 {
			n.mu.Lock()
			if na := cs.PeerCertificates[0].NotAfter; n.notAfter.IsZero() || na.Before(n.notAfter) {
				n.notAfter = na
			}
			n.mu.Unlock()
		}
		if n.trust.PartialChain && n.bundle != nil {
			if _, err := n.trust.chains(cs.PeerCertificates, n.bundle.certs, false, now); err != nil {
				n.mu.Lock()
				n.partialOnly = true
				n.mu.Unlock()
			}
		}
		return nil
	}
	return c
}

func (n *Net) take(addr string) net.Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.warm[addr]
	delete(n.warm, addr)
	return c
}

// Close closes idle and unused connections.
func (n *Net) Close() {
	n.mu.Lock()
	for k, c := range n.warm {
		c.Close()
		delete(n.warm, k)
	}
	n.mu.Unlock()
	n.Transport.CloseIdleConnections()
}

// EndpointReport is what the endpoint probe measured.
type EndpointReport struct {
	Notes    []string // what a backup client in another image would do differently (warnings)
	Addr     string
	DNS      time.Duration
	Connect  time.Duration
	TLS      time.Duration // 0 for http://
	TLSVer   string
	Resolved []string
	// NotAfter is when the server's certificate expires (zero for http://).
	NotAfter time.Time
	// Proxy is the proxy the backup client goes through (without user information), "" for none;
	// DNS and TCP are then the proxy's, and the endpoint's name is resolved by the proxy.
	Proxy string
}

func (r EndpointReport) String() string {
	s := fmt.Sprintf("%s: DNS %s, TCP %s", r.Addr, ms(r.DNS), ms(r.Connect))
	if r.Proxy != "" {
		s = fmt.Sprintf("%s through the proxy %s (from the backup client's environment): DNS %s, TCP %s to the proxy", r.Addr, r.Proxy, ms(r.DNS), ms(r.Connect))
	}
	if r.TLSVer != "" {
		s += fmt.Sprintf(", %s %s", r.TLSVer, ms(r.TLS))
	}
	return s
}

func ms(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	}
	return d.Round(time.Millisecond).String()
}

// Probe resolves, connects and (for https) completes a verified TLS handshake with u's host. The
// connection is kept for the first request of the SDK client. For http:// it tells a TLS server
// apart (the reverse mistake) by sending one harmless request.
func (n *Net) Probe(ctx context.Context, u *url.URL) (EndpointReport, error) {
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	addr := net.JoinHostPort(host, port)
	rep := EndpointReport{Addr: addr}
	op := "connect to " + addr
	if p, err := n.proxyFor(u.Scheme, addr); err != nil {
		return rep, err
	} else if p != nil {
		return n.probeProxied(ctx, u, p, rep)
	}

	t0 := time.Now()
	ips := []string{host}
	if net.ParseIP(host) == nil {
		var err error
		ips, err = n.resolver.LookupHost(ctx, host)
		if err != nil {
			return rep, NetError(op, err)
		}
	}
	rep.DNS = time.Since(t0)
	rep.Resolved = ips

	t1 := time.Now()
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: n.resolver}
	var conn net.Conn
	var err error
	for _, ip := range ips {
		conn, err = d.DialContext(ctx, "tcp", net.JoinHostPort(ip, port))
		if err == nil {
			break
		}
	}
	if err != nil {
		if e := NetError(op, err); e != nil {
			return rep, e
		}
		return rep, &Error{Op: op, Kind: KindNetwork, Msg: op + ": " + err.Error()}
	}
	rep.Connect = time.Since(t1)

	if u.Scheme == "https" {
		t2 := time.Now()
		tc := tls.Client(conn, n.tlsFor(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			if e := NetError("TLS handshake with "+addr, err); e != nil {
				return rep, e
			}
			return rep, &Error{Op: op, Kind: KindTLS, Msg: "TLS handshake with " + addr + ": " + redactText(err.Error())}
		}
		n.handshakeDone(&rep, tc, t2)
		conn = tc
	} else if tlsServer, err := isTLSServer(ctx, conn, host); err != nil {
		conn.Close()
		return rep, &Error{Op: op, Kind: KindTimeout, Msg: op + ": connected, but the endpoint did not answer an HTTP request (" + err.Error() + ")",
			Fix: "the server accepts connections but hangs: check it is an object store and healthy (a TLS port behind http:// also looks like this)"}
	} else if tlsServer {
		conn.Close()
		return rep, &Error{Op: op, Kind: KindTLS, Msg: op + ": the endpoint speaks TLS but endpointURL says http://",
			Fix: "use https:// in endpointURL (and endpointCA if the certificate is private)"}
	} else {
		conn.Close() // a plain connection was used for the request: do not reuse it
		conn = nil
	}
	if conn != nil {
		n.mu.Lock()
		if old := n.warm[addr]; old != nil {
			old.Close()
		}
		n.warm[addr] = conn
		n.mu.Unlock()
	}
	return rep, nil
}

// isTLSServer sends a minimal HTTP request and reports whether the answer says the server wants
// TLS. An endpoint that does not answer within 3 s (or the run's deadline) is an error.
func isTLSServer(ctx context.Context, conn net.Conn, host string) (bool, error) {
	start := time.Now()
	deadline := start.Add(3 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	defer conn.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(conn, "HEAD / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host); err != nil {
		return false, nil
	}
	br := bufio.NewReader(conn)
	first, err := br.Peek(5)
	if err != nil && len(first) == 0 {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false, fmt.Errorf("no answer within %s", time.Since(start).Round(100*time.Millisecond))
		}
		return false, nil
	}
	if len(first) >= 3 && first[0] == 0x15 && first[1] == 0x03 { // TLS alert record
		return true, nil
	}
	// Only look at what already arrived: a server may send headers and then stall.
	buf, _ := br.Peek(br.Buffered())
	text := strings.ToLower(string(buf))
	return strings.HasPrefix(text, "http/") && strings.Contains(text, "http request to an https server"), nil
}

// ClockSkew is how far the endpoint's clock (the Date header of the first answer that carried one)
// is from this machine's at the middle of that request; ok is false before any such answer.
func (n *Net) ClockSkew() (skew time.Duration, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.skew, n.skewOK
}

// noteDate records the clock skew the first answer with a Date header shows (start: when its
// request was sent).
func (n *Net) noteDate(h http.Header, start time.Time) {
	d := h.Get("Date")
	if d == "" {
		return
	}
	date, err := http.ParseTime(d)
	if err != nil {
		return
	}
	mid := start.Add(time.Since(start) / 2)
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.skewOK {
		n.skew, n.skewOK = date.Sub(mid.Truncate(time.Second)), true
	}
}

// handshakeDone records a finished TLS handshake (started at start) into rep: its time, version,
// the certificate's expiry, and the note when only a partial chain verified the server.
func (n *Net) handshakeDone(rep *EndpointReport, tc *tls.Conn, start time.Time) {
	rep.TLS = time.Since(start)
	st := tc.ConnectionState()
	rep.TLSVer = tls.VersionName(st.Version)
	if len(st.PeerCertificates) > 0 {
		rep.NotAfter = st.PeerCertificates[0].NotAfter
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.partialOnly {
		rep.Notes = append(rep.Notes, "the endpointCA bundle verifies the server only through a certificate that is not a self-signed root (an intermediate CA, or the server's own certificate): "+
			n.trust.Client+" accepts that (OpenSSL's partial chains), but older backup-client images (Python < 3.13 or urllib3 < 2.4: CNPG's bookworm and bullseye images, the plugin before v0.4.0, Debian's barman packages) refuse it with CERTIFICATE_VERIFY_FAILED")
	}
}

// proxyFix is the remediation of a proxy that cannot be used.
const proxyFix = "check the proxy in the backup client's environment (HTTPS_PROXY / HTTP_PROXY, and NO_PROXY for the endpoints it must not serve): it must be reachable from the database Pods"

// proxyFor is the proxy of the backup client for scheme://addr (addr host:port; the default port
// is left out of the host matched against NO_PROXY, as the clients match the URL's netloc).
func (n *Net) proxyFor(scheme, addr string) (*url.URL, error) {
	host := addr
	if h, port, err := net.SplitHostPort(addr); err == nil && (scheme == "https" && port == "443" || scheme == "http" && port == "80") {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	return n.proxy.ProxyFor(n.env, &url.URL{Scheme: scheme, Host: host})
}

// dialProxy connects to the proxy p, timing it into rep.
func (n *Net) dialProxy(ctx context.Context, p *url.URL, rep *EndpointReport) (net.Conn, error) {
	port := p.Port()
	if port == "" {
		port = map[bool]string{true: "443", false: "80"}[p.Scheme == "https"]
	}
	op := "connect to the proxy " + Redacted(p)
	t0 := time.Now()
	ips := []string{p.Hostname()}
	if net.ParseIP(p.Hostname()) == nil {
		var err error
		if ips, err = n.resolver.LookupHost(ctx, p.Hostname()); err != nil {
			e := NetError(op, err)
			e.Msg, e.Fix = "the proxy's fault: "+e.Msg, proxyFix
			return nil, e
		}
	}
	t1 := time.Now()
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: n.resolver}
	var conn net.Conn
	var err error
	for _, ip := range ips {
		if conn, err = d.DialContext(ctx, "tcp", net.JoinHostPort(ip, port)); err == nil {
			break
		}
	}
	if err != nil {
		e := NetError(op, err)
		if e == nil {
			e = &Error{Op: op, Kind: KindNetwork, Msg: op + ": " + redactText(err.Error())}
		}
		e.Err = err
		e.Msg, e.Fix = "the proxy's fault: "+e.Msg+" (the backup client goes through it, so the store cannot be reached either)", proxyFix
		return nil, e
	}
	if rep != nil {
		rep.DNS, rep.Resolved, rep.Connect = t1.Sub(t0), ips, time.Since(t1)
	}
	return conn, nil
}

// proxyRefused is a proxy's refusal of a CONNECT or a request to target.
func proxyRefused(p *url.URL, what, target string, resp *http.Response) *Error {
	fix := proxyFix
	switch resp.StatusCode {
	case http.StatusProxyAuthRequired:
		fix = "the proxy wants credentials: put them in the proxy URL (http://USER:PASSWORD@HOST:PORT) of the backup client's environment, from a Secret (valueFrom.secretKeyRef)"
	case http.StatusForbidden:
		fix = "allow " + target + " in the proxy's access rules (allow-list / ACL), or list the endpoint in NO_PROXY if the Pods reach it directly"
	}
	return &Error{Op: "proxy", Kind: KindDenied, Status: resp.StatusCode, Fix: fix,
		Msg: fmt.Sprintf("the proxy's fault: the proxy %s refused %s to %s: %s", Redacted(p), what, target, text.Cap(text.Sanitize(resp.Status), 80))}
}

// tunnel opens a CONNECT tunnel to target (host:port) through the proxy p, as botocore and
// urllib3 do for https:// endpoints.
func (n *Net) tunnel(ctx context.Context, p *url.URL, target string, rep *EndpointReport) (net.Conn, error) {
	conn, err := n.dialProxy(ctx, p, rep)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	req := fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\n", target, target)
	if p.User != nil {
		pw, _ := p.User.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(p.User.Username()+":"+pw)) + "\r\n"
	}
	op := "connect to the proxy " + Redacted(p)
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		return nil, &Error{Op: op, Kind: KindNetwork, Msg: "the proxy's fault: " + op + ": " + redactText(err.Error()), Fix: proxyFix, Err: err}
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		conn.Close()
		return nil, &Error{Op: op, Kind: KindNetwork, Msg: "the proxy's fault: " + op + ": no valid answer to CONNECT (" + redactText(FirstLine(err.Error())) + ")", Fix: proxyFix, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		conn.Close()
		return nil, proxyRefused(p, "the tunnel (CONNECT)", target, resp)
	}
	conn.SetDeadline(time.Time{})
	return &bufConn{Conn: conn, r: br}, nil
}

// probeProxied reaches u through the proxy p the way the backup client does: a CONNECT tunnel
// for https:// (then the verified TLS handshake with the endpoint inside it, kept for the first
// request), an absolute-form request for http://. A proxy that cannot be reached or refuses is
// named as the fault.
func (n *Net) probeProxied(ctx context.Context, u *url.URL, p *url.URL, rep EndpointReport) (EndpointReport, error) {
	rep.Proxy = Redacted(p)
	target := rep.Addr
	if u.Scheme == "https" {
		conn, err := n.tunnel(ctx, p, target, &rep)
		if err != nil {
			return rep, err
		}
		t2 := time.Now()
		tc := tls.Client(conn, n.tlsFor(u.Hostname()))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			if e := NetError("TLS handshake with "+target+" through the proxy", err); e != nil {
				return rep, e
			}
			return rep, &Error{Op: "TLS handshake", Kind: KindTLS, Msg: "TLS handshake with " + target + " through the proxy: " + redactText(err.Error())}
		}
		n.handshakeDone(&rep, tc, t2)
		n.mu.Lock()
		if old := n.warm[target]; old != nil {
			old.Close()
		}
		n.warm[target] = tc
		n.mu.Unlock()
		return rep, nil
	}
	conn, err := n.dialProxy(ctx, p, &rep)
	if err != nil {
		return rep, err
	}
	defer conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	req := fmt.Sprintf("HEAD http://%s/ HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", u.Host, u.Host)
	if p.User != nil {
		pw, _ := p.User.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(p.User.Username()+":"+pw)) + "\r\n"
	}
	io.WriteString(conn, req+"\r\n")
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), &http.Request{Method: http.MethodHead})
	if err != nil {
		return rep, &Error{Op: "proxy", Kind: KindNetwork, Msg: "the proxy's fault: the proxy " + rep.Proxy + " gave no valid answer (" + redactText(FirstLine(err.Error())) + ")", Fix: proxyFix, Err: err}
	}
	resp.Body.Close()
	// Plain HTTP through the proxy: a 407, or a 403 or gateway error without the request ID every
	// object store sends, comes from the proxy.
	store := resp.Header.Get("X-Amz-Request-Id") != "" || resp.Header.Get("X-Ms-Request-Id") != "" || resp.Header.Get("X-Guploader-Uploadid") != ""
	if resp.StatusCode == http.StatusProxyAuthRequired || !store && (resp.StatusCode == http.StatusForbidden || resp.StatusCode >= 500) {
		return rep, proxyRefused(p, "the request", target, resp)
	}
	return rep, nil
}

// bufConn is a connection whose first bytes were already read into r.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }
