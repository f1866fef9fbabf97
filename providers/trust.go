package providers

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// Trust is how the backup client's TLS stack verifies an endpoint's certificate, which differs
// between the Python libraries barman-cloud drives (each provider says which in its Info).
type Trust struct {
	// Client names the library, for messages.
	Client string
	// PartialChain is OpenSSL's X509_V_FLAG_PARTIAL_CHAIN: any certificate of the bundle is a
	// trust anchor (an intermediate, or the server's own certificate). Without it the chain must
	// end at a self-signed root of the bundle.
	PartialChain bool
	// Strict is OpenSSL's X509_V_FLAG_X509_STRICT: key identifiers, CA key usage and critical
	// basic constraints are required.
	Strict bool
}

// TrustError is a certificate the backup client's TLS stack would reject (CERTIFICATE_VERIFY_FAILED).
type TrustError struct{ Msg, Fix string }

func (e *TrustError) Error() string { return e.Msg }

// mozillaRoots are the roots certifi ships (Mozilla's NSS store), which barman-cloud's Python
// clients trust when no CA bundle is configured (pip's certifi in CNPG's images).
var mozillaRoots = sync.OnceValue(func() []*x509.Certificate {
	var out []*x509.Certificate
	for r := range bundle.Roots() {
		if c, err := x509.ParseCertificate(r.Certificate); err == nil && r.Constraint == nil {
			out = append(out, c)
		}
	}
	return out
})

// caBundle is a parsed endpointCA bundle.
type caBundle struct{ certs []*x509.Certificate }

func parseBundle(pemData []byte) (*caBundle, error) {
	b := &caBundle{}
	for rest := pemData; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		b.certs = append(b.certs, c)
	}
	if len(b.certs) == 0 {
		return nil, errors.New("endpointCA holds no PEM certificate")
	}
	return b, nil
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil
}

// verify checks the server's chain for host the way trust says, against the bundle (nil: the
// Mozilla roots).
func (tr Trust) verify(cs tls.ConnectionState, host string, b *caBundle, now time.Time) error {
	if len(cs.PeerCertificates) == 0 {
		return &TrustError{Msg: "the server sent no certificate"}
	}
	leaf := cs.PeerCertificates[0]
	if err := leaf.VerifyHostname(host); err != nil {
		return err // x509.HostnameError, named by NetError
	}
	anchors := mozillaRoots()
	if b != nil {
		anchors = b.certs
	}
	chains, err := tr.chains(cs.PeerCertificates, anchors, tr.PartialChain, now)
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) {
			return err // expired, not yet valid …: named by NetError
		}
		return tr.explain(cs.PeerCertificates, b, now)
	}
	if tr.Strict {
		if err := strictProblem(chains); err != nil {
			return err
		}
	}
	return nil
}

// chains verifies with OpenSSL's semantics: without partial chains only self-signed certificates
// of the anchors are roots, the others can only serve as intermediates.
func (tr Trust) chains(peer, anchors []*x509.Certificate, partial bool, now time.Time) ([][]*x509.Certificate, error) {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	for _, c := range anchors {
		if partial || selfSigned(c) {
			roots.AddCert(c)
		} else {
			inter.AddCert(c)
		}
	}
	return peer[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
}

// explain says why the chain is refused, and what another trust model would have said.
func (tr Trust) explain(peer []*x509.Certificate, b *caBundle, now time.Time) error {
	verifyFailed := "CERTIFICATE_VERIFY_FAILED in barman-cloud (" + tr.Client + ")"
	if b == nil {
		e := &TrustError{Msg: "TLS certificate signed by an unknown authority: not trusted by Mozilla's root store, which barman-cloud uses when endpointCA is not set (" + verifyFailed + ")",
			Fix: "set endpointCA to a Secret key holding the PEM bundle with the root CA that signed the endpoint's certificate"}
		if sys, err := x509.SystemCertPool(); err == nil && sys != nil {
			opts := x509.VerifyOptions{Roots: sys, Intermediates: x509.NewCertPool(), CurrentTime: now}
			for _, c := range peer[1:] {
				opts.Intermediates.AddCert(c)
			}
			if _, err := peer[0].Verify(opts); err == nil {
				e.Msg += "; this machine's own trust store does trust it (a CA installed here, not in the backup client's image)"
			}
		}
		return e
	}
	if !tr.PartialChain {
		if _, err := tr.chains(peer, b.certs, true, now); err == nil {
			return &TrustError{
				Msg: "the endpointCA bundle verifies the server only through a certificate that is not a self-signed root (an intermediate CA, or the server's own certificate): " +
					tr.Client + " needs the chain to end at a root of the bundle (" + verifyFailed + ": unable to get local issuer certificate)",
				Fix: "add the self-signed root CA of the endpoint's chain to the endpointCA bundle"}
		}
	}
	return &TrustError{Msg: "TLS certificate signed by an authority the endpointCA bundle does not hold (" + verifyFailed + ")",
		Fix: "put the root CA that signed the endpoint's certificate (and its chain) in the endpointCA bundle"}
}

var oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}

// strictProblem applies OpenSSL's X509_STRICT checks to the verified chain: what the plugin
// sidecar's Python (3.13, urllib3 ≥ 2.4) refuses although other clients accept it.
func strictProblem(chains [][]*x509.Certificate) error {
	var first error
	for _, chain := range chains {
		var err error
		for i, c := range chain {
			root := i == len(chain)-1 && selfSigned(c)
			switch {
			case !root && len(c.AuthorityKeyId) == 0:
				err = fmt.Errorf("certificate %q has no authority key identifier", c.Subject.CommonName)
			case c.IsCA && len(c.SubjectKeyId) == 0:
				err = fmt.Errorf("CA certificate %q has no subject key identifier", c.Subject.CommonName)
			case c.IsCA && c.KeyUsage&x509.KeyUsageCertSign == 0:
				err = fmt.Errorf("CA certificate %q lacks the keyCertSign key usage", c.Subject.CommonName)
			case c.IsCA && !slices.ContainsFunc(c.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidBasicConstraints) && e.Critical }):
				err = fmt.Errorf("CA certificate %q has non-critical basic constraints", c.Subject.CommonName)
			}
			if err != nil {
				break
			}
		}
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return &TrustError{Msg: first.Error() + ": OpenSSL's strict mode (X509_STRICT), which Python 3.13 with urllib3 ≥ 2.4 turns on, refuses it (CERTIFICATE_VERIFY_FAILED)",
		Fix: "reissue the certificate with authority/subject key identifiers (and CA certificates with critical basic constraints and keyCertSign)"}
}
