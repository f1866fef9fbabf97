package integration

import (
	"bytes"
	"context"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// storeCase opens one provider's Store on a fresh bucket through the same path the checks use:
// manifest -> target -> driver.Validate -> driver.Connect.
type storeCase struct {
	name    string
	open    func(t *testing.T) (providers.Store, string) // store on an existing bucket, and a manifest for a missing one
	missing func(t *testing.T) providers.Store
}

func openStore(t *testing.T, doc string) providers.Store {
	t.Helper()
	set := manifest.NewSet()
	if err := set.Add("acceptance.yaml", []byte(doc), "default"); err != nil {
		t.Fatal(err)
	}
	ts := targets.Build(set, func(ns string) providers.SecretLookup { return targets.SecretsFromSet(set, ns) })
	if len(ts) != 1 {
		t.Fatalf("targets: %d", len(ts))
	}
	pt := ts[0].ProviderTarget()
	d := providers.Get(ts[0].Provider())
	loc, fs := d.Validate(pt)
	for _, f := range fs {
		if f.Severity == providers.Fail {
			t.Fatalf("config: %s", f)
		}
	}
	ca, _ := d.CA(pt)
	n, err := providers.NewNet(ca, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	s, _, pfs := d.Connect(context.Background(), pt, loc, n)
	if s == nil {
		t.Fatalf("connect: %v", pfs)
	}
	return s
}

func storeCases(t *testing.T) []storeCase {
	srv := testenv.Load(t)
	minioDoc := func(endpoint, bucket, key, secret, ca string) string {
		c := s3Cluster{bucket: bucket, prefix: "acc", endpoint: endpoint, key: key, secret: secret, ca: ca}
		return c.yaml()
	}
	ca, _ := os.ReadFile(srv.Get("TLS_CA"))
	s3case := func(name, endpointVar, userVar, passVar string, tlsCA bool) storeCase {
		endpoint := srv.Get(endpointVar)
		host := endpoint[strings.Index(endpoint, "://")+3:]
		caPEM, caFile := "", []string(nil)
		if tlsCA {
			caPEM, caFile = string(ca), []string{srv.Get("TLS_CA")}
		}
		return storeCase{name: name,
			open: func(t *testing.T) (providers.Store, string) {
				mc := testenv.MinIO(t, host, srv.Get(userVar), srv.Get(passVar), caFile...)
				b := testenv.NewBucket(t, mc)
				return openStore(t, minioDoc(endpoint, b, srv.Get(userVar), srv.Get(passVar), caPEM)), b
			},
			missing: func(t *testing.T) providers.Store {
				return openStore(t, minioDoc(endpoint, testenv.Unique("pf-none-"), srv.Get(userVar), srv.Get(passVar), caPEM))
			}}
	}
	azcase := func(name string, tlsOn bool) storeCase {
		open := func(t *testing.T, container string) providers.Store {
			_, az := azurite(t, tlsOn)
			dest := az.Destination("acc")
			if container != "" {
				dest = strings.Replace(dest, "/"+az.Container+"/", "/"+container+"/", 1)
			}
			extra := ""
			sec := map[string]string{"AZURE_CONNECTION_STRING": az.ConnectionString()}
			if tlsOn {
				extra, sec["ca.crt"] = "      endpointCA: {name: az, key: ca.crt}", string(ca)
			}
			return openStore(t, azCluster(dest, connStrCreds, sec, extra))
		}
		return storeCase{name: name,
			open:    func(t *testing.T) (providers.Store, string) { return open(t, ""), "" },
			missing: func(t *testing.T) providers.Store { return open(t, testenv.Unique("pf-none-")) }}
	}
	sa := testenv.ServiceAccountJSON(t, "acc@test.iam.gserviceaccount.com")
	return []storeCase{
		s3case("minio", "MINIO_ENDPOINT", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", false),
		s3case("minio-tls", "MINIO_TLS_ENDPOINT", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", true),
		s3case("versitygw", "VERSITYGW_ENDPOINT", "VERSITYGW_ACCESS", "VERSITYGW_SECRET", false),
		azcase("azurite", false),
		azcase("azurite-tls", true),
		{name: "gcs-emulator",
			open: func(t *testing.T) (providers.Store, string) {
				g := testenv.NewGCSBucket(t, srv.Get("GCS_EMULATOR_HOST"))
				return openStore(t, gcsCluster(g.Bucket, saCreds, sa, "")), g.Bucket
			},
			missing: func(t *testing.T) providers.Store {
				return openStore(t, gcsCluster(testenv.Unique("pf-none-"), saCreds, sa, ""))
			}},
	}
}

// TestStoreAcceptance runs the same behaviour tests against every provider's Store.
func TestStoreAcceptance(t *testing.T) {
	t.Parallel()
	for _, sc := range storeCases(t) {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := sc.open(t)
			if err := s.CheckBucket(ctx); err != nil {
				t.Fatalf("CheckBucket: %v", err)
			}
			if err := sc.missing(t).CheckBucket(ctx); providers.KindOf(err) != providers.KindNotFound {
				t.Errorf("CheckBucket on a missing bucket: kind %s (%v), want not-found", providers.KindOf(err), err)
			}
			keys := []string{"acc/pg/a", "acc/pg/wals/0000000100000000/000000010000000000000001", "acc/pg/wals/0000000100000000/000000010000000000000002", "acc/pg/base/b1/backup.info"}
			for i, k := range keys {
				if err := s.Put(ctx, k, []byte(strings.Repeat("x", i+1)), providers.PutOptions{}); err != nil {
					t.Fatalf("Put %s: %v", k, err)
				}
			}
			got, err := s.Get(ctx, keys[1])
			if err != nil || !bytes.Equal(got, []byte("xx")) {
				t.Errorf("Get: %q %v", got, err)
			}
			l, err := s.List(ctx, "acc/pg/", "/", 0)
			sort.Strings(l.Prefixes)
			if err != nil || len(l.Keys) != 1 || l.Keys[0].Key != "acc/pg/a" || l.Keys[0].Size != 1 || strings.Join(l.Prefixes, ",") != "acc/pg/base/,acc/pg/wals/" {
				t.Errorf("List with delimiter: %+v %v", l, err)
			}
			l, err = s.List(ctx, "acc/pg/wals/", "", 1)
			if err != nil || len(l.Keys) != 1 || !l.Truncated {
				t.Errorf("List with max 1: %+v %v", l, err)
			}
			l, err = s.List(ctx, "acc/pg/", "", 0)
			if err != nil || len(l.Keys) != 4 || l.Truncated {
				t.Errorf("recursive List: %+v %v", l, err)
			}
			if ok, err := s.Exists(ctx, keys[0]); !ok || err != nil {
				t.Errorf("Exists: %v %v", ok, err)
			}
			for _, k := range keys {
				if err := s.Delete(ctx, k); err != nil {
					t.Errorf("Delete %s: %v", k, err)
				}
			}
			if ok, err := s.Exists(ctx, keys[0]); ok || err != nil {
				t.Errorf("Exists after delete: %v %v", ok, err)
			}
			if _, err := s.Get(ctx, keys[0]); providers.KindOf(err) != providers.KindNotFound {
				t.Errorf("Get after delete: kind %s (%v)", providers.KindOf(err), err)
			}
			parts := [][]byte{bytes.Repeat([]byte("p"), s.MinPartSize()), []byte("tail")}
			up, err := s.StartMultipart(ctx, "acc/pg/mp", parts, providers.PutOptions{})
			if err != nil {
				t.Fatalf("StartMultipart: %v", err)
			}
			if ok, _ := s.Exists(ctx, "acc/pg/mp"); ok {
				t.Error("the object exists before Complete")
			}
			if err := up.Complete(ctx); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			got, err = s.Get(ctx, "acc/pg/mp")
			if err != nil || len(got) != s.MinPartSize()+4 || string(got[len(got)-4:]) != "tail" {
				t.Errorf("multipart object: %d bytes, %v", len(got), err)
			}
			s.Delete(ctx, "acc/pg/mp")
			up, err = s.StartMultipart(ctx, "acc/pg/mp2", parts, providers.PutOptions{})
			if err != nil {
				t.Fatalf("StartMultipart: %v", err)
			}
			if err := up.Abort(ctx); err != nil {
				t.Errorf("Abort: %v", err)
			}
			if ok, _ := s.Exists(ctx, "acc/pg/mp2"); ok {
				t.Error("an uncompleted multipart upload left an object")
			}
			if l, _ := s.List(ctx, "acc/", "", 0); len(l.Keys) != 0 {
				t.Errorf("objects left: %+v", l.Keys)
			}
		})
	}
}
