package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

// bundles of a root → intermediate → leaf chain, as users put them in endpointCA.
func bundles(ch *testenv.Chain) map[string]string {
	return map[string]string{"root": ch.RootPEM, "intermediate only": ch.IntermediatePEM, "leaf only": ch.LeafPEM, "intermediate and root": ch.IntermediatePEM + ch.RootPEM}
}

func writeTemp(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TLS as barman's Python does it, on S3 (botocore: the bundle replaces every other root, and the
// chain must end at a self-signed root of the bundle: no partial chains). The server presents
// leaf + intermediate; each bundle is compared with barman-cloud 3.13 given it as AWS_CA_BUNDLE.
func TestS3TLSTrustAgreesWithBarman(t *testing.T) {
	t.Parallel()
	e, _, bucket := minioBucket(t)
	ch := testenv.NewChain(t, testenv.ChainOptions{})
	proxy := testenv.NewTLSProxy(t, e.srv.Get("MINIO_ENDPOINT"), ch.Cert)
	want := map[string]string{"root": "pass", "intermediate only": "fail", "leaf only": "fail", "intermediate and root": "pass"}
	for name, pem := range bundles(ch) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := e.root(bucket)
			c.endpoint, c.ca, c.prefix = proxy.URL, pem, "tls-"+strings.ReplaceAll(name, " ", "-")
			r := testenv.Check(t, c.yaml())
			ec := r.CheckOf(backupTarget, "endpoint")
			if string(ec.Status) != want[name] {
				t.Errorf("endpoint %s, want %s: %s", ec.Status, want[name], ec.Message)
			}
			if want[name] == "fail" && !strings.Contains(ec.Message, "not a self-signed root") {
				t.Errorf("endpoint: %s", ec.Message)
			}
			code, out := testenv.Barman(t, c.barmanEnv(writeTemp(t, "ca.pem", pem)), "barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", proxy.URL, c.dest(), "pg")
			if (code == 0) != (want[name] == "pass") || (code != 0 && !strings.Contains(out, "CERTIFICATE_VERIFY_FAILED")) {
				t.Errorf("barman-cloud-check-wal-archive: exit %d, our endpoint %s\n%s", code, ec.Status, out)
			}
		})
	}
	t.Run("no endpointCA", func(t *testing.T) {
		t.Parallel()
		c := e.root(bucket)
		c.endpoint = proxy.URL
		r := testenv.Check(t, c.yaml())
		if ec := r.CheckOf(backupTarget, "endpoint"); ec.Status != "fail" || !strings.Contains(ec.Message, "Mozilla's root store") {
			t.Errorf("endpoint: %+v", ec)
		}
		code, out := testenv.Barman(t, c.barmanEnv(""), "barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", proxy.URL, c.dest(), "pg")
		if code == 0 || !strings.Contains(out, "CERTIFICATE_VERIFY_FAILED") {
			t.Errorf("barman-cloud-check-wal-archive: exit %d\n%s", code, out)
		}
	})
	// A CA installed on the machine that runs cnpg-preflight (a CI runner) is not in the backup
	// client's image: the failure says so.
	t.Run("trusted by this machine only", func(t *testing.T) {
		t.Parallel()
		c := e.root(bucket)
		c.endpoint = proxy.URL
		cmd := exec.Command(testenv.Binary(t), "check", "-f", writeTemp(t, "c.yaml", c.yaml()), "-o", "json")
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+writeTemp(t, "root.pem", ch.RootPEM))
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Run()
		m := matrixOf(t, &out)
		if ec := m.Targets[0].Check("endpoint"); ec == nil || ec.Status != "fail" || !strings.Contains(ec.Message, "this machine's own trust store does trust it") {
			t.Errorf("endpoint: %+v", ec)
		}
	})
}

// On Azure, the client is requests with urllib3: the plugin sidecar (≥ v0.4.0) and CNPG's
// system-trixie images run urllib3 ≥ 2.4 on Python 3.13, which accepts partial chains (an
// intermediate or the leaf in the bundle) — a warning, since Debian's barman packages (urllib3
// 2.3, the reference 3.13 here) and older images refuse it.
func TestAzureTLSTrustAgreesWithBarman(t *testing.T) {
	t.Parallel()
	_, az := azurite(t, false)
	ch := testenv.NewChain(t, testenv.ChainOptions{})
	proxy := testenv.NewTLSProxy(t, az.Endpoint, ch.Cert)
	cs := strings.Replace(az.ConnectionString(), az.Endpoint, proxy.URL, 1)
	cs = strings.Replace(cs, "DefaultEndpointsProtocol=http;", "DefaultEndpointsProtocol=https;", 1)
	dest := strings.Replace(az.Destination("pg"), az.Endpoint, proxy.URL, 1)
	want := map[string]string{"root": "pass", "intermediate only": "warn", "leaf only": "warn", "intermediate and root": "pass"}
	for name, pem := range bundles(ch) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := testenv.Check(t, azCluster(dest, connStrCreds, map[string]string{"AZURE_CONNECTION_STRING": cs, "ca.crt": pem}, "      endpointCA: {name: az, key: ca.crt}"))
			ec := r.CheckOf(backupTarget, "endpoint")
			if string(ec.Status) != want[name] {
				t.Errorf("endpoint %s, want %s: %s", ec.Status, want[name], ec.Message)
			}
			code, out := barmanAzure(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs, "REQUESTS_CA_BUNDLE": writeTemp(t, "ca.pem", pem)}, "barman-cloud-check-wal-archive", dest, "pg")
			// the reference runs Debian's urllib3 2.3: no partial chains, like the older images
			if (code == 0) != (want[name] == "pass") || (code != 0 && !strings.Contains(out, "CERTIFICATE_VERIFY_FAILED")) {
				t.Errorf("barman-cloud-check-wal-archive: exit %d, our endpoint %s\n%s", code, ec.Status, out)
			}
		})
	}
	_ = fmt.Sprint
}
