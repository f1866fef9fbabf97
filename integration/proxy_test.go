package integration

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

// The backup client's proxy, from the Cluster's spec.env (in-tree) or the ObjectStore's sidecar
// env resolved from a Secret (plugin), against a real tinyproxy in front of MinIO over TLS whose
// allow-list lets localhost through and blocks 127.0.0.1: each setting that changes what
// barman-cloud 3.13 does (run with the same environment) changes our verdict the same way.
func TestS3ProxyAgreesWithBarman(t *testing.T) {
	t.Parallel()
	srv := testenv.Load(t)
	tlsURL, _ := url.Parse(srv.Get("MINIO_TLS_ENDPOINT"))
	port := tlsURL.Port()
	mc := testenv.MinIO(t, tlsURL.Host, srv.Get("MINIO_ROOT_USER"), srv.Get("MINIO_ROOT_PASSWORD"), srv.Get("TLS_CA"))
	bucket := testenv.NewBucket(t, mc)
	ca, err := os.ReadFile(srv.Get("TLS_CA"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartTinyproxy(t, "^localhost$")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String() // nothing listens there
	ln.Close()
	allowed, blocked := "https://localhost:"+port, "https://127.0.0.1:"+port

	envYAML := func(env map[string]string) string {
		var b strings.Builder
		b.WriteString("  env:\n")
		for k, v := range env {
			fmt.Fprintf(&b, "  - {name: %s, value: %q}\n", k, v)
		}
		return b.String()
	}
	for _, sc := range []struct {
		name     string
		endpoint string
		env      map[string]string
		pass     bool
		msg      string // in the endpoint check's message
	}{
		{"through the proxy", allowed, map[string]string{"HTTPS_PROXY": proxy.URL}, true, "through the proxy " + proxy.URL},
		{"lower-case https_proxy", allowed, map[string]string{"https_proxy": proxy.URL}, true, "through the proxy"},
		{"destination blocked by the proxy's allow-list", blocked, map[string]string{"HTTPS_PROXY": proxy.URL}, false, "the proxy's fault: the proxy " + proxy.URL + " refused the tunnel (CONNECT) to 127.0.0.1:" + port + ": 403 Filtered"},
		{"proxy unreachable", allowed, map[string]string{"HTTPS_PROXY": dead}, false, "the proxy's fault"},
		{"NO_PROXY bypasses the proxy", allowed, map[string]string{"HTTPS_PROXY": dead, "NO_PROXY": "localhost"}, true, "localhost:" + port + ": DNS"},
		{"NO_PROXY with a leading dot and another port does not", allowed, map[string]string{"HTTPS_PROXY": dead, "NO_PROXY": ".localhost:1"}, false, "the proxy's fault"},
		{"HTTP_PROXY is not used for https", blocked, map[string]string{"HTTP_PROXY": dead}, true, "127.0.0.1:" + port + ": DNS"},
		{"ALL_PROXY is not botocore's", blocked, map[string]string{"ALL_PROXY": dead, "all_proxy": dead}, true, "127.0.0.1:" + port + ": DNS"},
		{"an empty lower-case https_proxy unsets HTTPS_PROXY", blocked, map[string]string{"HTTPS_PROXY": dead, "https_proxy": ""}, true, "127.0.0.1:" + port + ": DNS"},
	} {
		t.Run(sc.name, func(t *testing.T) {
			c := s3Cluster{bucket: bucket, prefix: "proxy", endpoint: sc.endpoint, key: srv.Get("MINIO_ROOT_USER"), secret: srv.Get("MINIO_ROOT_PASSWORD"), ca: string(ca), extra: envYAML(sc.env)}
			before := proxy.Connects("localhost:" + port)
			r := testenv.Check(t, c.yaml(), "--read-only")
			ec := r.CheckOf(backupTarget, "endpoint")
			// (endpoint may warn besides: the test CA's certificates are short-lived)
			if sc.pass {
				wantStatuses(t, r, backupTarget, "credentials=pass bucket=pass list=pass wal-archive=pass")
				if r.Code != 0 || ec.Status == "fail" {
					t.Errorf("exit %d, endpoint %s", r.Code, ec.Status)
				}
			} else {
				wantStatuses(t, r, backupTarget, "credentials=pass endpoint=fail bucket=skip list=skip wal-archive=skip")
				if r.Code != 1 {
					t.Errorf("exit %d", r.Code)
				}
			}
			if !strings.Contains(ec.Message, sc.msg) {
				t.Errorf("endpoint: %q, want %q", ec.Message, sc.msg)
			}
			ours := proxy.Connects("localhost:"+port) - before
			env := c.barmanEnv(srv.Get("TLS_CA"))
			for k, v := range sc.env {
				env[k] = v
			}
			code, out := testenv.Barman(t, env, "barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", sc.endpoint, c.dest(), "pg")
			if (code == 0) != sc.pass {
				t.Errorf("barman-cloud-check-wal-archive 3.13: exit %d, we say pass=%v\n%s", code, sc.pass, out)
			}
			if !sc.pass && !strings.Contains(out, "roxy") {
				t.Errorf("barman does not blame the proxy:\n%s", out)
			}
			theirs := proxy.Connects("localhost:"+port) - before - ours
			if through := strings.Contains(sc.msg, "through the proxy"); through && (ours == 0 || theirs == 0) {
				t.Errorf("CONNECTs through the proxy: ours %d, barman's %d\n%s", ours, theirs, proxy.Log())
			}
		})
	}

	// Plugin: the proxy URL comes from a Secret (valueFrom) in the sidecar's env.
	t.Run("plugin sidecar env from a Secret", func(t *testing.T) {
		doc := fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  instances: 1
  plugins:
  - name: barman-cloud.cloudnative-pg.io
    isWALArchiver: true
    parameters: {barmanObjectName: store}
---
apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata: {name: store, namespace: db}
spec:
  configuration:
    destinationPath: s3://%s/proxy-plugin
    endpointURL: %s
    endpointCA: {name: store-creds, key: ca.crt}
    s3Credentials:
      accessKeyId: {name: store-creds, key: ACCESS_KEY_ID}
      secretAccessKey: {name: store-creds, key: ACCESS_SECRET_KEY}
  instanceSidecarConfiguration:
    env:
    - name: HTTPS_PROXY
      valueFrom: {secretKeyRef: {name: proxy, key: url}}
---
apiVersion: v1
kind: Secret
metadata: {name: proxy, namespace: db}
stringData: {url: %q}
---
apiVersion: v1
kind: Secret
metadata: {name: store-creds, namespace: db}
stringData:
  ACCESS_KEY_ID: %s
  ACCESS_SECRET_KEY: %s
  ca.crt: |
%s`, bucket, blocked, proxy.URL, srv.Get("MINIO_ROOT_USER"), srv.Get("MINIO_ROOT_PASSWORD"), indent(string(ca), "    "))
		doc = strings.Replace(doc, "http://127.0.0.1:", "http://user:pr0xy-pa55@127.0.0.1:", 1) // tinyproxy ignores it
		r := testenv.Check(t, doc, "--read-only")
		if strings.Contains(r.Stdout+r.Stderr, "pr0xy-pa55") {
			t.Error("the proxy's password leaks")
		}
		wantStatuses(t, r, backupTarget, "credentials=pass endpoint=fail bucket=skip")
		if ec := r.CheckOf(backupTarget, "endpoint"); !strings.Contains(ec.Message, "403 Filtered") || !strings.Contains(ec.Remediation, "allow 127.0.0.1:"+port) {
			t.Errorf("endpoint: %+v", ec)
		}
		// barman-cloud 3.13 with the sidecar's environment fails the same way
		env := map[string]string{"AWS_ACCESS_KEY_ID": srv.Get("MINIO_ROOT_USER"), "AWS_SECRET_ACCESS_KEY": srv.Get("MINIO_ROOT_PASSWORD"), "AWS_CA_BUNDLE": srv.Get("TLS_CA"),
			"HTTPS_PROXY": strings.Replace(proxy.URL, "http://", "http://user:pr0xy-pa55@", 1)}
		if code, out := testenv.Barman(t, env, "barman-cloud-check-wal-archive", "--cloud-provider", "aws-s3", "--endpoint-url", blocked, "s3://"+bucket+"/proxy-plugin", "pg"); code == 0 || !strings.Contains(out, "roxy") {
			t.Errorf("barman-cloud-check-wal-archive 3.13 through the blocking proxy: exit %d\n%s", code, out)
		}
		// a missing key fails credentials, naming the field
		r = testenv.Check(t, strings.Replace(doc, "key: url}", "key: nope}", 1), "--read-only")
		if cc := r.CheckOf(backupTarget, "credentials"); cc.Status != "fail" || !strings.Contains(cc.Message, "ObjectStore store: spec.instanceSidecarConfiguration.env[0].valueFrom.secretKeyRef: Secret db/proxy has no key \"nope\"") {
			t.Errorf("credentials: %+v", cc)
		}
	})
}

func indent(s, pfx string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		b.WriteString(pfx + l + "\n")
	}
	return b.String()
}

// The same proxy rules with Azure: barman-cloud's Azure client (azure-storage-blob over requests)
// and our azblob transport, against a real tinyproxy in front of Azurite over TLS whose allow-list
// lets localhost through and blocks 127.0.0.1, with the proxy from the Cluster's spec.env.
func TestAzureProxyAgreesWithBarman(t *testing.T) {
	t.Parallel()
	srv := testenv.Load(t)
	tlsURL, _ := url.Parse(srv.Get("AZURITE_TLS_ENDPOINT"))
	port := tlsURL.Port()
	allowed, blocked := "https://localhost:"+port, "https://127.0.0.1:"+port
	az := testenv.NewAzureContainer(t, allowed, srv.Get("AZURITE_ACCOUNT"), srv.Get("AZURITE_KEY"), srv.Get("TLS_CA"))
	ca, err := os.ReadFile(srv.Get("TLS_CA"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartTinyproxy(t, "^localhost$")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String() // nothing listens there
	ln.Close()
	for _, sc := range []struct {
		name     string
		endpoint string
		env      map[string]string
		pass     bool
		msg      string // in the endpoint check's message
	}{
		{"through the proxy", allowed, map[string]string{"HTTPS_PROXY": proxy.URL}, true, "through the proxy " + proxy.URL},
		{"destination blocked by the proxy's allow-list", blocked, map[string]string{"HTTPS_PROXY": proxy.URL}, false, "the proxy's fault"},
		{"proxy unreachable", allowed, map[string]string{"https_proxy": dead}, false, "the proxy's fault"},
		{"NO_PROXY bypasses the proxy", allowed, map[string]string{"HTTPS_PROXY": dead, "NO_PROXY": "localhost"}, true, "localhost:" + port + ": DNS"},
	} {
		t.Run(sc.name, func(t *testing.T) {
			cs := strings.Replace(az.ConnectionString(), allowed, sc.endpoint, 1)
			dest := strings.Replace(az.Destination("proxy"), allowed, sc.endpoint, 1)
			extra := "      endpointCA: {name: az, key: ca.crt}\n  env:\n"
			for k, v := range sc.env {
				extra += fmt.Sprintf("  - {name: %s, value: %q}\n", k, v)
			}
			before := proxy.Connects("localhost:" + port)
			r := testenv.Check(t, azCluster(dest, connStrCreds, map[string]string{"AZURE_CONNECTION_STRING": cs, "ca.crt": string(ca)}, strings.TrimSuffix(extra, "\n")), "--read-only")
			ec := r.CheckOf(backupTarget, "endpoint")
			if sc.pass {
				wantStatuses(t, r, backupTarget, "credentials=pass bucket=pass list=pass wal-archive=pass")
				if ec.Status == "fail" {
					t.Errorf("endpoint: %+v", ec)
				}
			} else {
				wantStatuses(t, r, backupTarget, "credentials=pass endpoint=fail bucket=skip list=skip wal-archive=skip")
			}
			if !strings.Contains(ec.Message, sc.msg) {
				t.Errorf("endpoint: %q, want %q", ec.Message, sc.msg)
			}
			assertClean(t, r, az.Key)
			ours := proxy.Connects("localhost:"+port) - before
			env := map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs, "REQUESTS_CA_BUNDLE": srv.Get("TLS_CA")}
			for k, v := range sc.env {
				env[k] = v
			}
			code, out := barmanAzure(t, env, "barman-cloud-check-wal-archive", dest, "pg")
			if (code == 0) != sc.pass {
				t.Errorf("barman-cloud-check-wal-archive 3.13: exit %d, we say pass=%v\n%s", code, sc.pass, out)
			}
			theirs := proxy.Connects("localhost:"+port) - before - ours
			if strings.Contains(sc.msg, "through the proxy") && (ours == 0 || theirs == 0) {
				t.Errorf("CONNECTs through the proxy: ours %d, barman's %d\n%s", ours, theirs, proxy.Log())
			}
		})
	}
}
