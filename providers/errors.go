package providers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Kind classifies an object-store error so checks can explain it the same way for every provider.
type Kind string

// Kinds of errors.
const (
	KindOther       Kind = "error"
	KindNotFound    Kind = "not-found"
	KindDenied      Kind = "access-denied"   // authenticated, not allowed
	KindAuth        Kind = "bad-credentials" // signature/key/token rejected
	KindNetwork     Kind = "network"         // refused, unreachable, reset
	KindDNS         Kind = "dns"             // host does not resolve
	KindTLS         Kind = "tls"             // certificate or protocol problem
	KindTimeout     Kind = "timeout"         // deadline reached
	KindCanceled    Kind = "interrupted"     // run interrupted
	KindRegion      Kind = "region"          // wrong region
	KindUnsupported Kind = "unsupported"     // feature refused (encryption, tagging, checksums)
	KindThrottled   Kind = "throttled"       // 503 SlowDown after retries
	KindRedirect    Kind = "redirect"        // a 3xx answer (never followed)
	KindTooLarge    Kind = "too-large"       // an answer or object larger than any cap allows
)

// Error is a classified, redacted object-store error.
type Error struct {
	Op     string // operation, e.g. HeadBucket
	Kind   Kind
	Code   string // provider error code, e.g. AccessDenied
	Status int    // HTTP status, 0 if none
	Msg    string // one line, redacted
	Fix    string // remediation, may be empty
	Err    error  // the SDK or transport error classified (its text may carry secrets: never print it)
	// Fallback, for a refused bulk delete, says which barman-cloud versions fall back to single
	// deletes on this error ("" when none does).
	Fallback string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the classified error, so errors.Is sees through (context errors, for example).
func (e *Error) Unwrap() error { return e.Err }

// Classifier turns an SDK error of an operation into a classified, redacted *Error.
type Classifier func(op string, err error) *Error

// Err is nil for a nil err, the classified error otherwise.
func (c Classifier) Err(op string, err error) error {
	if err == nil {
		return nil
	}
	return c(op, err)
}

// Notice is a success that has something to say: the operation worked, but not the way it
// should (a check reports it as a warning).
type Notice struct{ Msg, Fix string }

func (n *Notice) Error() string { return n.Msg }

// KindOf returns the Kind of err (KindOther when it is not an *Error).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindOther
}

// NetError classifies transport-level errors (nil if err is not one). op names the operation.
func NetError(op string, err error) *Error {
	if err == nil {
		return nil
	}
	e := netError(op, err)
	if e != nil {
		e.Err = err
	}
	return e
}

func netError(op string, err error) *Error {
	switch {
	case errors.Is(err, ErrBodyTooLarge):
		return &Error{Op: op, Kind: KindTooLarge, Msg: op + ": " + ErrBodyTooLarge.Error() + "; no object-store answer barman-cloud relies on is that large",
			Fix: "check that endpointURL points at the object store itself, not at a proxy or web server"}
	case errors.Is(err, ErrRequestBudget):
		return &Error{Op: op, Kind: KindTooLarge, Msg: op + ": " + ErrRequestBudget.Error(),
			Fix: "check that endpointURL points at the object store itself: its listings never end"}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Op: op, Kind: KindTimeout, Msg: op + ": timed out"}
	case errors.Is(err, context.Canceled):
		return &Error{Op: op, Kind: KindCanceled, Msg: op + ": interrupted"}
	}
	var te *TrustError
	if errors.As(err, &te) {
		return &Error{Op: op, Kind: KindTLS, Msg: op + ": " + te.Msg, Fix: te.Fix}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &Error{Op: op, Kind: KindDNS, Msg: fmt.Sprintf("%s: cannot resolve host %q", op, dnsErr.Name),
			Fix: "check the host name in endpointURL / destinationPath and the Pod's DNS"}
	}
	var unk x509.UnknownAuthorityError
	if errors.As(err, &unk) {
		return &Error{Op: op, Kind: KindTLS, Msg: op + ": TLS certificate signed by an unknown authority (CERTIFICATE_VERIFY_FAILED in barman-cloud)",
			Fix: "set endpointCA to a Secret key holding the PEM CA bundle that signed the endpoint's certificate"}
	}
	var host x509.HostnameError
	if errors.As(err, &host) {
		return &Error{Op: op, Kind: KindTLS, Msg: fmt.Sprintf("%s: TLS certificate is not valid for host %q", op, host.Host),
			Fix: "use the host name the certificate was issued for in endpointURL, or reissue the certificate with that name"}
	}
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		return &Error{Op: op, Kind: KindTLS, Msg: fmt.Sprintf("%s: TLS certificate invalid: %s", op, inv.Error()),
			Fix: "renew or fix the endpoint's certificate chain"}
	}
	var rec tls.RecordHeaderError
	if errors.As(err, &rec) {
		return &Error{Op: op, Kind: KindTLS, Msg: op + ": the endpoint answers plain HTTP, not TLS (https:// used against an http server)",
			Fix: "use http:// in endpointURL, or enable TLS on the server"}
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return &Error{Op: op, Kind: KindTLS, Msg: op + ": TLS certificate verification failed: " + redactText(certErr.Err.Error()),
			Fix: "set endpointCA to the CA bundle that signed the endpoint's certificate"}
	}
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return &Error{Op: op, Kind: KindTLS, Msg: op + ": TLS handshake refused by the server: " + alert.Error()}
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return &Error{Op: op, Kind: KindNetwork, Msg: op + ": connection refused",
			Fix: "check the host and port of the endpoint and that the object store is running and reachable from the Pod"}
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return &Error{Op: op, Kind: KindNetwork, Msg: op + ": connection reset by the server",
			Fix: "check http:// vs https:// and the port of the endpoint"}
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return &Error{Op: op, Kind: KindNetwork, Msg: op + ": host unreachable", Fix: "check network policies and routes from the Pod to the endpoint"}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{Op: op, Kind: KindTimeout, Msg: op + ": timed out"}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if strings.Contains(ue.Err.Error(), "malformed HTTP response") || strings.Contains(ue.Err.Error(), "server gave HTTP response to HTTPS client") {
			return &Error{Op: op, Kind: KindTLS, Msg: op + ": the endpoint answers plain HTTP, not TLS", Fix: "use http:// in endpointURL"}
		}
		if errors.Is(ue.Err, io.EOF) || errors.Is(ue.Err, io.ErrUnexpectedEOF) || strings.Contains(ue.Err.Error(), "EOF") {
			return &Error{Op: op, Kind: KindNetwork, Msg: op + ": the server closed the connection without answering",
				Fix: "check http:// vs https:// and the port of the endpoint"}
		}
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return &Error{Op: op, Kind: KindNetwork, Msg: op + ": " + redactText(oe.Err.Error())}
	}
	return nil
}

// FirstLine is the first line of s (SDK errors often span several).
func FirstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Redaction -----------------------------------------------------------------------------------

var (
	// query parameters that carry secrets (Azure SAS signature, pre-signed URLs, tokens)
	secretQueryRE = regexp.MustCompile(`(?i)([?&](?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|token|access_token|se|sp|sv|skoid|sktid|skt|ske|sks|skv|st|spr|srt|ss|sr)=)[^&\s"']+`)
	// AccountKey=... and SharedAccessSignature=... in connection strings
	connKeyRE = regexp.MustCompile(`(?i)((?:AccountKey|SharedAccessSignature|SharedAccessKey)=)[^;\s"']+`)
	// Authorization headers
	authHeaderRE = regexp.MustCompile(`(?i)(authorization:\s*)[^\r\n]+`)
)

func redactText(s string) string {
	s = secretQueryRE.ReplaceAllString(s, "${1}REDACTED")
	s = connKeyRE.ReplaceAllString(s, "${1}REDACTED")
	s = authHeaderRE.ReplaceAllString(s, "${1}REDACTED")
	return s
}

// Redactor removes known secret values from text: each value, its URL-escaped and base64 forms,
// of any length. A short value is removed where it stands as a whole token only (not glued to
// letters or digits), so that a secret equal to a word part does not garble normal text.
type Redactor struct{ secrets []string }

// Add registers secret values to scrub (surrounding white space is ignored; a PEM key is also
// registered line by line, as servers may echo it reflowed).
func (r *Redactor) Add(values ...string) {
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		forms := []string{v, url.QueryEscape(v), base64.StdEncoding.EncodeToString([]byte(v))}
		if strings.Contains(v, "\n") {
			for _, l := range strings.Split(v, "\n") {
				if l = strings.TrimSpace(l); len(l) >= 16 && !strings.HasPrefix(l, "-----") {
					forms = append(forms, l)
				}
			}
		}
		for _, f := range forms {
			if !slices.Contains(r.secrets, f) {
				r.secrets = append(r.secrets, f)
			}
		}
	}
	// longest first: a value containing another is replaced whole
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

// Redact returns s without any registered secret, SAS signature, connection-string key or token.
func (r *Redactor) Redact(s string) string {
	if r != nil {
		for _, v := range r.secrets {
			s = replaceToken(s, v, "REDACTED")
		}
	}
	return redactText(s)
}

// replaceToken replaces every occurrence of tok in s; a short tok (under 16 bytes: a word could
// hold it) only where it is not glued to a letter or digit.
func replaceToken(s, tok, repl string) string {
	if tok == "" || !strings.Contains(s, tok) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, tok)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(tok)
		before, _ := utf8.DecodeLastRuneInString(s[:i])
		after, _ := utf8.DecodeRuneInString(s[end:])
		glued := len(tok) < 16 && ((i > 0 && isAlnum(before) && isAlnum(firstRune(tok))) || (end < len(s) && isAlnum(after) && isAlnum(lastRune(tok))))
		if glued {
			b.WriteString(s[:i+1])
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i] + repl)
		s = s[end:]
	}
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func firstRune(s string) rune { r, _ := utf8.DecodeRuneInString(s); return r }

func lastRune(s string) rune { r, _ := utf8.DecodeLastRuneInString(s); return r }
