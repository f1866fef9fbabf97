package testenv

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/all"
	"github.com/cnpg-preflight/cnpg-preflight/providers/providertest"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// ClusterDoc is a Cluster db/pg whose in-tree backup block holds conf (barmanObjectStore lines,
// indented by 6) and a Secret db/store-creds holding secrets.
func ClusterDoc(conf string, secrets map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg, namespace: db}\nspec:\n  backup:\n    barmanObjectStore:\n%s\n", strings.TrimRight(conf, "\n"))
	b.WriteString("---\napiVersion: v1\nkind: Secret\nmetadata: {name: store-creds, namespace: db}\nstringData:\n")
	keys := make([]string, 0, len(secrets))
	for k := range secrets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %q\n", k, secrets[k])
	}
	return b.String()
}

// OpenStore opens the Store of a manifest's only target through the path the checks take:
// manifest -> target -> driver.Validate -> driver.Connect (the emulator settings of the servers).
func OpenStore(t testing.TB, doc string) providers.Store {
	t.Helper()
	set := manifest.NewSet()
	if err := set.Add("store.yaml", []byte(doc), "default"); err != nil {
		t.Fatal(err)
	}
	reg := all.Registry(all.Settings{GCSEmulatorHost: serversEnv()["GCS_EMULATOR_HOST"]})
	ts := targets.Build(set, func(ns string) providers.SecretLookup { return targets.SecretsFromSet(set, ns) }, reg)
	if len(ts) != 1 || ts[0].Driver == nil {
		t.Fatalf("want one target with a provider, got %d", len(ts))
	}
	pt, d := ts[0].ProviderTarget(), ts[0].Driver
	loc, fs := d.Validate(pt)
	for _, f := range fs {
		if f.Severity == providers.Fail {
			t.Fatalf("config: %s", f)
		}
	}
	ctx := context.Background()
	ca, _ := d.CA(ctx, pt)
	n, err := providers.NewNet(ca, providers.NetOptions{Trust: d.Info().TLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	s, _, pfs := d.Connect(ctx, pt, loc, n)
	if s == nil {
		t.Fatalf("connect: %v", pfs)
	}
	return s
}

// S3Opener opens stores on fresh buckets of an S3 server of servers.env (endpoint, user and
// password variables; tls: the server's certificate is signed by TLS_CA).
func S3Opener(srv *Servers, endpointVar, userVar, passVar string, tls bool) providertest.Opener {
	return func(t *testing.T, missing bool) providers.Store {
		endpoint, user, pass := srv.Get(endpointVar), srv.Get(userVar), srv.Get(passVar)
		secrets := map[string]string{"ACCESS_KEY_ID": user, "ACCESS_SECRET_KEY": pass}
		var caFile []string
		conf := ""
		if tls {
			ca, err := os.ReadFile(srv.Get("TLS_CA"))
			if err != nil {
				t.Fatal(err)
			}
			secrets["ca.crt"], caFile = string(ca), []string{srv.Get("TLS_CA")}
			conf = "      endpointCA: {name: store-creds, key: ca.crt}\n"
		}
		bucket := Unique("pf-none-")
		if !missing {
			bucket = NewBucket(t, MinIO(t, endpoint[strings.Index(endpoint, "://")+3:], user, pass, caFile...))
		}
		conf += fmt.Sprintf("      destinationPath: s3://%s/acc\n      endpointURL: %s\n      s3Credentials:\n"+
			"        accessKeyId: {name: store-creds, key: ACCESS_KEY_ID}\n        secretAccessKey: {name: store-creds, key: ACCESS_SECRET_KEY}\n", bucket, endpoint)
		return OpenStore(t, ClusterDoc(conf, secrets))
	}
}

// AzureOpener opens stores on fresh Azurite containers (tls: the HTTPS Azurite).
func AzureOpener(srv *Servers, tls bool) providertest.Opener {
	return func(t *testing.T, missing bool) providers.Store {
		endpoint, caFile := srv.Get("AZURITE_ENDPOINT"), ""
		if tls {
			endpoint, caFile = srv.Get("AZURITE_TLS_ENDPOINT"), srv.Get("TLS_CA")
		}
		az := NewAzureContainer(t, endpoint, srv.Get("AZURITE_ACCOUNT"), srv.Get("AZURITE_KEY"), caFile)
		dest := az.Destination("acc")
		if missing {
			dest = strings.Replace(dest, "/"+az.Container+"/", "/"+Unique("pf-none-")+"/", 1)
		}
		secrets := map[string]string{"AZURE_CONNECTION_STRING": az.ConnectionString()}
		conf := fmt.Sprintf("      destinationPath: %s\n      azureCredentials:\n        connectionString: {name: store-creds, key: AZURE_CONNECTION_STRING}\n", dest)
		if tls {
			ca, err := os.ReadFile(caFile)
			if err != nil {
				t.Fatal(err)
			}
			secrets["ca.crt"] = string(ca)
			conf += "      endpointCA: {name: store-creds, key: ca.crt}\n"
		}
		return OpenStore(t, ClusterDoc(conf, secrets))
	}
}

// GCSOpener opens stores on fresh buckets of the GCS emulator.
func GCSOpener(srv *Servers) providertest.Opener {
	return func(t *testing.T, missing bool) providers.Store {
		bucket := Unique("pf-none-")
		if !missing {
			bucket = NewGCSBucket(t, srv.Get("GCS_EMULATOR_HOST")).Bucket
		}
		secrets := map[string]string{"gcsCredentials": ServiceAccountJSON(t, "acc@test.iam.gserviceaccount.com")}
		conf := fmt.Sprintf("      destinationPath: gs://%s/acc\n      googleCredentials:\n        applicationCredentials: {name: store-creds, key: gcsCredentials}\n", bucket)
		return OpenStore(t, ClusterDoc(conf, secrets))
	}
}
