package cli

import (
	"context"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// The process environment is the backup client's only when cnpg-preflight runs as the Pod (the
// Job): from a laptop its AWS_* and proxy variables are never used; in the Pod the honoured ones
// are, under the Cluster's own env.
func TestPodEnvOnlyInThePod(t *testing.T) {
	set := manifest.NewSet()
	doc := `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: db}
spec:
  env: [{name: AWS_DEFAULT_REGION, value: eu-west-3}]
  backup:
    barmanObjectStore:
      destinationPath: s3://b/p
      s3Credentials: {inheritFromIAMRole: true}
`
	if err := set.Add("c.yaml", []byte(doc), "db"); err != nil {
		t.Fatal(err)
	}
	proc := map[string]string{"AWS_ROLE_ARN": "arn:aws:iam::1:role/pg", "HTTPS_PROXY": "http://laptop:3128", "AWS_DEFAULT_REGION": "us-west-1", "HOME": "/root"}
	environ := func() []string {
		var out []string
		for k, v := range proc {
			out = append(out, k+"="+v)
		}
		return out
	}
	run := func() map[string]string {
		f := &Factory{IO: &IOStreams{Getenv: func(k string) string { return proc[k] }, Environ: environ}}
		f.Registry = NewFactory(f.IO).Registry
		in := &input{set: set, secrets: func(ns string) providers.SecretLookup { return targets.SecretsFromSet(set, ns) }}
		ts := in.build(f)
		pt := ts[0].ProviderTarget()
		if fs := pt.LoadEnv(context.Background()); len(fs) > 0 {
			t.Fatal(fs)
		}
		return pt.Env
	}
	if env := run(); env["HTTPS_PROXY"] != "" || env["AWS_ROLE_ARN"] != "" || env["AWS_DEFAULT_REGION"] != "eu-west-3" {
		t.Errorf("outside a Pod: %v", env)
	}
	proc["KUBERNETES_SERVICE_HOST"] = "10.0.0.1"
	if env := run(); env["HTTPS_PROXY"] != "http://laptop:3128" || env["AWS_ROLE_ARN"] == "" || env["AWS_DEFAULT_REGION"] != "eu-west-3" || env["HOME"] != "" {
		t.Errorf("in the Pod: %v", env)
	}
}
