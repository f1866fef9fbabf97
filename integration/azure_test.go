package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
)

// azCluster is a Cluster whose backup goes to Azurite with the given azureCredentials block.
func azCluster(dest, creds string, secret map[string]string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg, namespace: db}\nspec:\n  backup:\n    barmanObjectStore:\n      destinationPath: %s\n      azureCredentials:\n%s\n", dest, creds)
	if extra != "" {
		b.WriteString(extra + "\n")
	}
	b.WriteString("---\napiVersion: v1\nkind: Secret\nmetadata: {name: az, namespace: db}\nstringData:\n")
	for k, v := range secret {
		fmt.Fprintf(&b, "  %s: %q\n", k, v)
	}
	return b.String()
}

const connStrCreds = "        connectionString: {name: az, key: AZURE_CONNECTION_STRING}"

func azurite(t *testing.T, tlsOn bool) (*testenv.Servers, *testenv.Azure) {
	srv := testenv.Load(t)
	if tlsOn {
		return srv, testenv.NewAzureContainer(t, srv.Get("AZURITE_TLS_ENDPOINT"), srv.Get("AZURITE_ACCOUNT"), srv.Get("AZURITE_KEY"), srv.Get("TLS_CA"))
	}
	return srv, testenv.NewAzureContainer(t, srv.Get("AZURITE_ENDPOINT"), srv.Get("AZURITE_ACCOUNT"), srv.Get("AZURITE_KEY"), "")
}

func barmanAzure(t *testing.T, env map[string]string, cmd string, args ...string) (int, string) {
	return testenv.Barman(t, env, cmd, append([]string{"--cloud-provider", "azure-blob-storage"}, args...)...)
}

func TestAzureConnectionStringAgreesWithBarman(t *testing.T) {
	t.Parallel()
	_, az := azurite(t, false)
	az.Put(t, "other/keep.txt", []byte("keep"))
	before := az.Snapshot(t)
	cs := az.ConnectionString()
	r := testenv.Check(t, azCluster(az.Destination("pg-backups"), connStrCreds, map[string]string{"AZURE_CONNECTION_STRING": cs}, ""))
	wantStatuses(t, r, backupTarget, allPass)
	assertClean(t, r, cs, az.Key)
	if d := testenv.Diff(before, az.Snapshot(t)); d != "" {
		t.Errorf("the run changed the container:\n%s", d)
	}
	code, out := barmanAzure(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs}, "barman-cloud-check-wal-archive", az.Destination("pg-backups"), "pg")
	if code != 0 {
		t.Errorf("barman-cloud-check-wal-archive: exit %d\n%s", code, out)
	}
}

func TestAzureWrongKeyAgreesWithBarman(t *testing.T) {
	t.Parallel()
	_, az := azurite(t, false)
	bad := strings.Replace(az.ConnectionString(), az.Key, "d3Jvbmcta2V5LWNhbmFyeS1mb3ItdGVzdHMtb25seS0wMDAwMDAwMDAwMDAwMDAw", 1)
	r := testenv.Check(t, azCluster(az.Destination("pg-backups"), connStrCreds, map[string]string{"AZURE_CONNECTION_STRING": bad}, ""))
	wantStatuses(t, r, backupTarget, "config=warn credentials=pass endpoint=pass bucket=fail *=skip")
	if bc := r.CheckOf(backupTarget, "bucket"); !strings.Contains(bc.Message, "Authorization") && !strings.Contains(bc.Message, "Authentication") {
		t.Errorf("bucket: %+v", bc)
	}
	assertClean(t, r, "d3Jvbmcta2V5LWNhbmFyeS1mb3ItdGVzdHMtb25seS0wMDAwMDAwMDAwMDAwMDAw")
	code, out := barmanAzure(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": bad}, "barman-cloud-check-wal-archive", az.Destination("pg-backups"), "pg")
	if code == 0 {
		t.Errorf("barman-cloud-check-wal-archive succeeded with a wrong key:\n%s", out)
	}
}

func TestAzureAccountKeyAgainstEmulatorFailsInConfigLikeBarman(t *testing.T) {
	t.Parallel()
	_, az := azurite(t, false)
	creds := "        storageAccount: {name: az, key: AZURE_STORAGE_ACCOUNT}\n        storageKey: {name: az, key: AZURE_STORAGE_KEY}"
	r := testenv.Check(t, azCluster(az.Destination("pg-backups"), creds, map[string]string{"AZURE_STORAGE_ACCOUNT": az.Account, "AZURE_STORAGE_KEY": az.Key}, ""))
	wantStatuses(t, r, backupTarget, "config=fail *=skip")
	if cc := r.CheckOf(backupTarget, "config"); !strings.Contains(cc.Message, "connection string") {
		t.Errorf("config: %+v", cc)
	}
	assertClean(t, r, az.Key)
	code, out := barmanAzure(t, map[string]string{"AZURE_STORAGE_ACCOUNT": az.Account, "AZURE_STORAGE_KEY": az.Key}, "barman-cloud-check-wal-archive", az.Destination("pg-backups"), "pg")
	if code == 0 || !strings.Contains(out, "connection string must be provided") {
		t.Errorf("barman-cloud-check-wal-archive: exit %d\n%s", code, out)
	}
}

func TestAzureSASPermissions(t *testing.T) {
	t.Parallel()
	_, az := azurite(t, false)
	t.Run("read and list only", func(t *testing.T) {
		cs, sig := az.SASConnectionString(t, sas.ContainerPermissions{Read: true, List: true})
		before := az.Snapshot(t)
		r := testenv.Check(t, azCluster(az.Destination("pg-backups"), connStrCreds, map[string]string{"AZURE_CONNECTION_STRING": cs}, ""))
		wantStatuses(t, r, backupTarget, "config=warn credentials=warn store-policies=warn write=fail read=skip overwrite=skip delete=skip multipart=fail backups=skip *=pass")
		// the SAS names what it lacks; a container SAS cannot read the container's or the account's settings
		if cr := r.CheckOf(backupTarget, "credentials"); !strings.Contains(cr.Message, `(sp="rl") lack w (write)`) {
			t.Errorf("credentials: %+v", cr)
		}
		if sp := r.CheckOf(backupTarget, "store-policies"); !strings.Contains(sp.Message, "a container SAS cannot read them") {
			t.Errorf("store-policies: %+v", sp)
		}
		if wc := r.CheckOf(backupTarget, "write"); !strings.Contains(wc.Remediation, "Storage Blob Data Contributor") {
			t.Errorf("write: %+v", wc)
		}
		assertClean(t, r, sig, cs)
		if d := testenv.Diff(before, az.Snapshot(t)); d != "" {
			t.Errorf("the run changed the container:\n%s", d)
		}
		code, out := barmanAzure(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs}, "barman-cloud-wal-archive", az.Destination("pg-backups"), "pg", walFile(t, "000000010000000000000001"))
		if code == 0 {
			t.Errorf("barman-cloud-wal-archive with a read-only SAS succeeded:\n%s", out)
		}
	})
	t.Run("no delete", func(t *testing.T) {
		cs, sig := az.SASConnectionString(t, sas.ContainerPermissions{Read: true, List: true, Write: true, Create: true, Add: true})
		before := az.Snapshot(t)
		r := testenv.Check(t, azCluster(az.Destination("pg-backups"), connStrCreds, map[string]string{"AZURE_CONNECTION_STRING": cs}, ""))
		wantStatuses(t, r, backupTarget, "config=warn credentials=warn store-policies=warn delete=fail backups=skip *=pass")
		if dc := r.CheckOf(backupTarget, "delete"); !strings.Contains(dc.Remediation, "d, delete") {
			t.Errorf("delete: %+v", dc)
		}
		assertClean(t, r, sig, cs)
		left := r.Matrix.Targets[0].Leftovers
		if d := testenv.Diff(before, az.Snapshot(t)); len(left) != 1 || d != "+ "+left[0] {
			t.Errorf("leftovers %v, diff %q", left, d)
		}
		for _, k := range left {
			az.Delete(t, k)
		}
	})
}

func TestAzureHTTPSEndpointCAAgreesWithBarman(t *testing.T) {
	t.Parallel()
	srv, az := azurite(t, true)
	cs := az.ConnectionString()
	ca, err := os.ReadFile(srv.Get("TLS_CA"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("without endpointCA", func(t *testing.T) {
		r := testenv.Check(t, azCluster(az.Destination("pg"), connStrCreds, map[string]string{"AZURE_CONNECTION_STRING": cs}, ""))
		if ec := r.CheckOf(backupTarget, "endpoint"); ec.Status != "fail" || !strings.Contains(ec.Message, "unknown authority") {
			t.Errorf("endpoint: %+v", ec)
		}
		code, out := barmanAzure(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs}, "barman-cloud-check-wal-archive", az.Destination("pg"), "pg")
		if code == 0 || !strings.Contains(out, "CERTIFICATE_VERIFY_FAILED") {
			t.Errorf("barman-cloud-check-wal-archive: exit %d\n%s", code, out)
		}
	})
	t.Run("with endpointCA", func(t *testing.T) {
		before := az.Snapshot(t)
		r := testenv.Check(t, azCluster(az.Destination("pg"), connStrCreds, map[string]string{"AZURE_CONNECTION_STRING": cs, "ca.crt": string(ca)}, "      endpointCA: {name: az, key: ca.crt}"))
		wantStatuses(t, r, backupTarget, allPass)
		if d := testenv.Diff(before, az.Snapshot(t)); d != "" {
			t.Errorf("the run changed the container:\n%s", d)
		}
		code, out := barmanAzure(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs, "REQUESTS_CA_BUNDLE": srv.Get("TLS_CA")}, "barman-cloud-check-wal-archive", az.Destination("pg"), "pg")
		if code != 0 {
			t.Errorf("barman-cloud-check-wal-archive with REQUESTS_CA_BUNDLE: exit %d\n%s", code, out)
		}
	})
}

func TestAzureNonEmptyArchiveAgreesWithBarman(t *testing.T) {
	t.Parallel()
	_, az := azurite(t, false)
	cs := az.ConnectionString()
	env := map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs}
	code, out := barmanAzure(t, env, "barman-cloud-wal-archive", az.Destination("pg-backups"), "pg", walFile(t, "000000010000000000000007"))
	if code != 0 {
		t.Fatalf("barman-cloud-wal-archive: exit %d\n%s", code, out)
	}
	r := testenv.Check(t, azCluster(az.Destination("pg-backups"), connStrCreds, map[string]string{"AZURE_CONNECTION_STRING": cs}, ""))
	if wc := r.CheckOf(backupTarget, "wal-archive"); wc.Status != "fail" || !strings.Contains(wc.Message, "Expected empty archive") || !strings.Contains(wc.Message, "000000010000000000000007") {
		t.Errorf("wal-archive: %+v", wc)
	}
	code, out = barmanAzure(t, env, "barman-cloud-check-wal-archive", az.Destination("pg-backups"), "pg")
	if code != 1 || !strings.Contains(out, "Expected empty archive") {
		t.Errorf("barman-cloud-check-wal-archive: exit %d\n%s", code, out)
	}
}
