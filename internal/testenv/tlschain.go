package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"
)

// Chain is a generated PKI: a self-signed root, an intermediate signed by it, and a leaf for
// 127.0.0.1 signed by the intermediate. PEM blocks are ready to be put in an endpointCA Secret.
type Chain struct {
	RootPEM, IntermediatePEM, LeafPEM string
	Cert                              tls.Certificate // the leaf and the intermediate, as a server presents them
}

// ChainOptions vary the certificates.
type ChainOptions struct {
	LeafTTL time.Duration // leaf validity from now (default 300 days: the endpoint check warns within 30)
}

// NewChain generates a root → intermediate → leaf chain.
func NewChain(t testing.TB, o ChainOptions) *Chain {
	t.Helper()
	if o.LeafTTL == 0 {
		o.LeafTTL = 300 * 24 * time.Hour
	}
	now := time.Now().Add(-time.Hour)
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(1)
	mk := func(tmpl, parent *x509.Certificate, pub, signer any) (*x509.Certificate, string) {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		if parent == nil {
			parent = tmpl // self-signed
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	rk, ik, lk := key(), key(), key()
	ca := func(cn string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, NotBefore: now, NotAfter: now.Add(365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	}
	root, rootPEM := mk(ca("cnpg-preflight test root"), nil, &rk.PublicKey, rk)
	rootTmpl := root
	inter, interPEM := mk(ca("cnpg-preflight test intermediate"), rootTmpl, &ik.PublicKey, rk)
	leafTmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: now, NotAfter: time.Now().Add(o.LeafTTL),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leaf, leafPEM := mk(leafTmpl, inter, &lk.PublicKey, ik)
	return &Chain{RootPEM: rootPEM, IntermediatePEM: interPEM, LeafPEM: leafPEM,
		Cert: tls.Certificate{Certificate: [][]byte{leaf.Raw, inter.Raw}, PrivateKey: lk, Leaf: leaf}}
}

// TLSProxy is a TLS-terminating reverse proxy on 127.0.0.1 in front of a real HTTP server (MinIO,
// Azurite), presenting cert; the Host header is kept, so signatures made for the proxy's address
// stay valid. Rule, when set, sees every request first and may answer it (true).
type TLSProxy struct {
	URL  string
	Rule func(w http.ResponseWriter, r *http.Request) bool
}

// NewTLSProxy starts a TLS proxy to target (http://host:port).
func NewTLSProxy(t testing.TB, target string, cert tls.Certificate) *TLSProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	p := &TLSProxy{URL: "https://" + ln.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.Rule != nil && p.Rule(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}), ErrorLog: nil}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p
}
