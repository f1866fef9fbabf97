package providers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
)

// quietTLSServer is an httptest TLS server that does not log the handshakes the tests fail on purpose.
func quietTLSServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// noDNS resolves nothing: every lookup fails without touching the network.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no DNS in unit tests")
}}

// tlsDial performs a real TLS handshake with cfg against addr and returns its error.
func tlsDial(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err == nil {
		c.Close()
	}
	return err
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestNetError(t *testing.T) {
	t.Parallel()
	tlsSrv := quietTLSServer(t)
	plainSrv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(plainSrv.Close)
	tlsAddr := strings.TrimPrefix(tlsSrv.URL, "https://")
	trusted := x509.NewCertPool()
	trusted.AddCert(tlsSrv.Certificate())

	_, dnsErr := noDNS.LookupHost(context.Background(), "minio.example.test")
	_, refused := net.DialTimeout("tcp", closedAddr(t), 5*time.Second)
	deadline, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	<-deadline.Done()
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()

	cases := []struct {
		name string
		err  error
		kind Kind
		msg  string // exact, "" to skip
		has  string // substring of Msg
		fix  string // substring of Fix
	}{
		{"deadline", fmt.Errorf("operation error S3: GetObject: %w", deadline.Err()), KindTimeout, "GetObject: timed out", "", ""},
		{"canceled", &url.Error{Op: "Get", URL: "http://h/b", Err: canceled.Err()}, KindCanceled, "GetObject: interrupted", "", ""},
		{"dns (real lookup)", dnsErr, KindDNS, `GetObject: cannot resolve host "minio.example.test"`, "", "check the host name in endpointURL"},
		{"dns (wrapped)", &url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "s3.nowhere.test", IsNotFound: true}}}, KindDNS, `GetObject: cannot resolve host "s3.nowhere.test"`, "", ""},
		{"unknown authority (real handshake)", tlsDial(t, tlsAddr, &tls.Config{RootCAs: x509.NewCertPool()}), KindTLS, "", "TLS certificate signed by an unknown authority (CERTIFICATE_VERIFY_FAILED in barman-cloud)", "set endpointCA"},
		{"wrong host name (real handshake)", tlsDial(t, tlsAddr, &tls.Config{RootCAs: trusted, ServerName: "minio.wrong.test"}), KindTLS, `GetObject: TLS certificate is not valid for host "minio.wrong.test"`, "", "use the host name the certificate was issued for"},
		{"TLS to a plain HTTP server (real handshake)", tlsDial(t, strings.TrimPrefix(plainSrv.URL, "http://"), &tls.Config{InsecureSkipVerify: true}), KindTLS, "", "answers plain HTTP, not TLS", "use http:// in endpointURL"},
		{"connection refused (real dial)", refused, KindNetwork, "GetObject: connection refused", "", "check the host and port"},
		{"net timeout", &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, KindTimeout, "GetObject: timed out", "", ""},
		{"EOF", &url.Error{Op: "Get", URL: "http://h/?sig=SECRET", Err: io.EOF}, KindNetwork, "GetObject: the server closed the connection without answering", "", "check http:// vs https://"},
		{"HTTP answer to HTTPS", &url.Error{Op: "Get", URL: "https://h/", Err: errors.New("http: server gave HTTP response to HTTPS client")}, KindTLS, "GetObject: the endpoint answers plain HTTP, not TLS", "", ""},
		{"other op error is redacted", &net.OpError{Op: "write", Net: "tcp", Err: errors.New("broken upload https://a/b?sv=1&sig=SECRET")}, KindNetwork, "", "sig=REDACTED", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.err == nil {
				t.Fatal("the setup produced no error")
			}
			e := NetError("GetObject", c.err)
			if e == nil {
				t.Fatalf("%v (%T) not classified", c.err, c.err)
			}
			if e.Kind != c.kind || e.Op != "GetObject" {
				t.Errorf("kind %q op %q, want %q (msg %q)", e.Kind, e.Op, c.kind, e.Msg)
			}
			if c.msg != "" && e.Msg != c.msg {
				t.Errorf("Msg %q, want %q", e.Msg, c.msg)
			}
			if !strings.Contains(e.Msg, c.has) || !strings.Contains(e.Fix, c.fix) {
				t.Errorf("Msg %q / Fix %q, want %q / %q", e.Msg, e.Fix, c.has, c.fix)
			}
			if strings.Contains(e.Msg, "SECRET") {
				t.Errorf("Msg leaks: %q", e.Msg)
			}
			if e.Err != c.err || !errors.Is(e, c.err) {
				t.Error("the classified error must wrap the original")
			}
			if e.Error() != e.Msg {
				t.Errorf("Error() %q != Msg", e.Error())
			}
		})
	}
	if e := NetError("op", nil); e != nil {
		t.Errorf("NetError(nil) = %+v", e)
	}
	if e := NetError("op", errors.New("AccessDenied")); e != nil {
		t.Errorf("a non-network error was classified: %+v", e)
	}
}

func TestProbe(t *testing.T) {
	t.Parallel()
	tlsSrv := quietTLSServer(t)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, _ := url.Parse(tlsSrv.URL)

	n, err := NewNet(nil, NetOptions{Resolver: noDNS})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.Probe(ctx, u); KindOf(err) != KindTLS || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("https without endpointCA: %v", err)
	}
	if _, err := n.Probe(ctx, &url.URL{Scheme: "http", Host: u.Host}); KindOf(err) != KindTLS || !strings.Contains(err.Error(), "speaks TLS but endpointURL says http://") {
		t.Errorf("http:// to a TLS port: %v", err)
	}
	if _, err := n.Probe(ctx, &url.URL{Scheme: "http", Host: closedAddr(t)}); KindOf(err) != KindNetwork || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("closed port: %v", err)
	}
	if _, err := n.Probe(ctx, &url.URL{Scheme: "https", Host: "minio.example.test:9000"}); KindOf(err) != KindDNS {
		t.Errorf("unresolvable host: %v", err)
	}

	if _, err := NewNet([]byte("not a certificate"), NetOptions{}); err == nil || err.Error() != "endpointCA holds no PEM certificate" {
		t.Errorf("NewNet with a bad CA: %v", err)
	}
	n2, err := NewNet(ca, NetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	rep, err := n2.Probe(ctx, u)
	if err != nil || rep.TLSVer == "" || rep.Addr != u.Host {
		t.Fatalf("with endpointCA: %+v %v", rep, err)
	}
	// the warmed connection serves the first request
	resp, err := n2.Client.Get(tlsSrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n2.Requests() != 1 {
		t.Errorf("Requests() = %d", n2.Requests())
	}
}

func TestRedactor(t *testing.T) {
	t.Parallel()
	r := &Redactor{}
	r.Add("wJalrXUtnFEMI/K7MDENG+bPxRfiCY=", "abc", "  spaced-secret-value\n", "")
	cases := []struct{ in, want string }{
		{"key wJalrXUtnFEMI/K7MDENG+bPxRfiCY= end", "key REDACTED end"},
		{"escaped wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCY%3D end", "escaped REDACTED end"},
		{"trimmed spaced-secret-value!", "trimmed REDACTED!"},
		{"short values are secrets too, as whole tokens: abc, not inside abcd", "short values are secrets too, as whole tokens: REDACTED, not inside abcd"},
		{"https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sp=rl&se=2030-01-01&sig=AbC%2Bd%3D&comp=list",
			"https://acct.blob.core.windows.net/c/b?sv=REDACTED&sp=REDACTED&se=REDACTED&sig=REDACTED&comp=list"},
		{"https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F2024&X-Amz-Signature=deadbeef&X-Amz-Security-Token=tok&x-id=GetObject",
			"https://b.s3.amazonaws.com/k?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&x-id=GetObject"},
		{"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abc+def/ghi==;EndpointSuffix=core.windows.net",
			"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=REDACTED;EndpointSuffix=core.windows.net"},
		{"BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;SharedAccessSignature=sv=2022-11-02&sig=XYZ",
			"BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;SharedAccessSignature=REDACTED"},
		{"GET / HTTP/1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIA/20240101/us-east-1/s3/aws4_request, Signature=abcdef\r\nHost: h\r\n",
			"GET / HTTP/1.1\r\nAuthorization: REDACTED\r\nHost: h\r\n"},
		{"authorization: Bearer ya29.token", "authorization: REDACTED"},
		{"nothing secret here: AccountName=acct, destinationPath s3://b/p", "nothing secret here: AccountName=acct, destinationPath s3://b/p"},
	}
	for _, c := range cases {
		if got := r.Redact(c.in); got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
	var none *Redactor // a nil Redactor still scrubs the well-known forms
	if got := none.Redact("u?sig=abc&x=1"); got != "u?sig=REDACTED&x=1" {
		t.Errorf("nil Redactor: %q", got)
	}
}

func TestRedactorBase64(t *testing.T) {
	t.Parallel()
	r := &Redactor{}
	r.Add("super-secret-value")
	b64 := base64.StdEncoding.EncodeToString([]byte("super-secret-value"))
	if got := r.Redact("echo " + b64); strings.Contains(got, b64) {
		t.Errorf("base64 form kept: %q", got)
	}
}

func TestErrorUnwrapAndClassifier(t *testing.T) {
	t.Parallel()
	calls := 0
	c := Classifier(func(op string, err error) *Error {
		calls++
		if e := NetError(op, err); e != nil {
			return e
		}
		return &Error{Op: op, Kind: KindDenied, Msg: op + ": denied", Err: err}
	})
	if err := c.Err("PutObject", nil); err != nil {
		t.Fatalf("Classifier.Err(nil) = %#v, want a nil interface", err)
	}
	if calls != 0 {
		t.Error("the classifier must not be called for a nil error")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	<-ctx.Done()
	err := c.Err("PutObject", fmt.Errorf("operation error S3: PutObject: %w", ctx.Err()))
	if !errors.Is(err, context.DeadlineExceeded) || KindOf(err) != KindTimeout {
		t.Errorf("errors.Is(DeadlineExceeded) %v, kind %q", errors.Is(err, context.DeadlineExceeded), KindOf(err))
	}
	wrapped := fmt.Errorf("write check: %w", err)
	if !errors.Is(wrapped, context.DeadlineExceeded) || KindOf(wrapped) != KindTimeout {
		t.Error("Unwrap must see through a wrapped classified error")
	}
	var e *Error
	if !errors.As(wrapped, &e) || e.Op != "PutObject" || errors.Unwrap(e) != e.Err {
		t.Errorf("errors.As: %+v", e)
	}

	sentinel := errors.New("403")
	err = c.Err("GetObject", sentinel)
	if !errors.Is(err, sentinel) || KindOf(err) != KindDenied || err.Error() != "GetObject: denied" {
		t.Errorf("got %v kind %q", err, KindOf(err))
	}
	if KindOf(errors.New("plain")) != KindOther || KindOf(nil) != KindOther {
		t.Error("KindOf of a non-*Error must be KindOther")
	}
	if FirstLine("  first line\nsecond\n") != "first line" || FirstLine("one") != "one" {
		t.Error("FirstLine")
	}
}

func TestTargetRef(t *testing.T) {
	t.Parallel()
	tg := &Target{Field: "spec.backup.barmanObjectStore", Namespace: "db", Secret: func(_ context.Context, name, key string) ([]byte, error) {
		switch {
		case name != "creds":
			return nil, SecretNotFound("db", name)
		case key == "empty":
			return []byte(" \n"), nil
		case key != "id":
			return nil, SecretKeyMissing("db", name, key)
		}
		return []byte("AKIA"), nil
	}}
	ctx := context.Background()
	if v, f := tg.Ref(ctx, nil, "s3Credentials.region"); v != nil || f != nil {
		t.Errorf("nil reference: %q %v", v, f)
	}
	if v, f := tg.Ref(ctx, &manifest.SecretKeySelector{Name: "creds", Key: "id"}, "s3Credentials.accessKeyId"); string(v) != "AKIA" || f != nil {
		t.Errorf("ok: %q %v", v, f)
	}
	cases := []struct {
		ref      manifest.SecretKeySelector
		msg, fix string
	}{
		{manifest.SecretKeySelector{Name: "creds"}, "Secret reference needs both name and key", "set both name and key"},
		{manifest.SecretKeySelector{Name: "x", Key: "id"}, "Secret db/x not found", `create the Secret db/x with key "id"`},
		{manifest.SecretKeySelector{Name: "creds", Key: "k"}, `Secret db/creds has no key "k"`, `create the Secret db/creds with key "k"`},
		{manifest.SecretKeySelector{Name: "creds", Key: "empty"}, `key "empty" of Secret db/creds is empty`, `put the value in key "empty" of Secret db/creds`},
	}
	for _, c := range cases {
		ref := c.ref
		v, f := tg.Ref(ctx, &ref, "s3Credentials.accessKeyId")
		if v != nil || f == nil || f.Severity != Fail || f.Field != "spec.backup.barmanObjectStore.s3Credentials.accessKeyId" || f.Msg != c.msg || !strings.HasPrefix(f.Fix, c.fix) {
			t.Errorf("%+v: %q %+v", c.ref, v, f)
		}
	}
}

// Secrets of any length are removed, but a short one only as a whole token: a Secret value equal
// to a common word part does not garble normal text.
func TestRedactorTokenBoundaries(t *testing.T) {
	r := &Redactor{}
	r.Add("Forbid", "ab", "x9")
	for _, c := range []struct{ in, want string }{
		{"403 Forbidden (AccessDenied)", "403 Forbidden (AccessDenied)"},
		{"secret=Forbid;", "secret=REDACTED;"},
		{"about abstract ab tab", "about abstract REDACTED tab"},
		{"key x9/other", "key REDACTED/other"},
		{"YWI= is base64 of ab", "REDACTED is base64 of REDACTED"},
	} {
		if got := r.Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
