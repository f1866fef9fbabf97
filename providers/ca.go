package providers

import (
	"context"
	"crypto/x509"
	"encoding/pem"
)

// EndpointCA resolves endpointCA and checks that it holds PEM certificates. A bundle whose
// certificates are not CAs is a warning: it can only verify a server presenting that very certificate.
func EndpointCA(ctx context.Context, t *Target) ([]byte, []Finding) {
	ref := t.Conf.EndpointCA
	if ref == nil {
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
