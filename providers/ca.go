package providers

import (
	"context"
	"crypto/x509"
	"encoding/pem"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
)

// EndpointCA resolves endpointCA and checks that it holds PEM certificates. A bundle whose
// certificates are not CAs is a warning: it can only verify a server presenting that very certificate.
func EndpointCA(ctx context.Context, t *Target) ([]byte, []Finding) {
	ref := t.Conf.EndpointCA
	if ref == nil {
		// Without endpointCA, CNPG sets no bundle: one named by the environment is used.
		for _, name := range []string{"AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"} {
			if p := t.Env[name]; p != "" {
				return nil, []Finding{Warnf(t.F("endpointCA"), "put the bundle in a Secret and reference it with endpointCA (cnpg-preflight then verifies with it)",
					"not set, but the backup client's environment sets %s=%s: it trusts that file of its Pod instead of Mozilla's roots; cnpg-preflight cannot read it and verifies with Mozilla's roots", name, text.Cap(text.Sanitize(p), 200))}
			}
		}
		return nil, nil
	}
	v, f := t.Ref(ctx, ref, "endpointCA")
	if f != nil {
		return nil, []Finding{*f}
	}
	const fix = "put the PEM CA bundle (-----BEGIN CERTIFICATE-----) in the Secret key"
	var fs []Finding
	rest, certs := v, 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, []Finding{Failf(t.F("endpointCA"), fix, "key %q of Secret %s/%s holds a malformed certificate: %v", ref.Key, t.Namespace, ref.Name, err)}
		}
		if !c.IsCA {
			fs = append(fs, Warnf(t.F("endpointCA"), "put the CA certificate that signed the endpoint's certificate in the bundle",
				"the bundle holds a certificate that is not a CA (%q); it only verifies a server presenting exactly that certificate", c.Subject.CommonName))
		}
		certs++
	}
	if certs == 0 {
		return nil, []Finding{Failf(t.F("endpointCA"), fix, "key %q of Secret %s/%s holds no PEM certificate", ref.Key, t.Namespace, ref.Name)}
	}
	return v, fs
}
