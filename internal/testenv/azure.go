package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// Azure is an independent azblob client on one Azurite container, made with the account key.
type Azure struct {
	Endpoint  string // e.g. http://127.0.0.1:10000
	Account   string
	Key       string
	Container string
	c         *container.Client
	cred      *container.SharedKeyCredential
}

// NewAzureContainer creates a fresh container on Azurite and deletes it when the test ends.
func NewAzureContainer(t testing.TB, endpoint, account, key, caFile string) *Azure {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(account, key)
	if err != nil {
		t.Fatal(err)
	}
	a := &Azure{Endpoint: endpoint, Account: account, Key: key, Container: Unique("pf-"), cred: cred}
	opts := &container.ClientOptions{}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		opts.ClientOptions.Transport = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	opts.ClientOptions.Retry = policy.RetryOptions{MaxRetries: 1}
	a.c, err = container.NewClientWithSharedKeyCredential(endpoint+"/"+account+"/"+a.Container, cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.Create(context.Background(), nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
	t.Cleanup(func() { a.c.Delete(context.Background(), nil) })
	return a
}

// ConnectionString is the connection string for this account (key-based).
func (a *Azure) ConnectionString() string {
	proto := "http"
	if strings.HasPrefix(a.Endpoint, "https://") {
		proto = "https"
	}
	return "DefaultEndpointsProtocol=" + proto + ";AccountName=" + a.Account + ";AccountKey=" + a.Key + ";BlobEndpoint=" + a.Endpoint + "/" + a.Account + ";"
}

// SASConnectionString is a connection string holding a container SAS with the given permissions.
func (a *Azure) SASConnectionString(t testing.TB, perms sas.ContainerPermissions) (cs, sig string) {
	t.Helper()
	tok, sig := a.SAS(t, perms, time.Now().Add(time.Hour))
	return "BlobEndpoint=" + a.Endpoint + "/" + a.Account + ";SharedAccessSignature=" + tok, sig
}

// SAS is a container SAS token (the query string) with the given permissions and expiry, and its signature.
func (a *Azure) SAS(t testing.TB, perms sas.ContainerPermissions, expiry time.Time) (tok, sig string) {
	t.Helper()
	q, err := sas.BlobSignatureValues{Protocol: sas.ProtocolHTTPSandHTTP, StartTime: time.Now().Add(-time.Hour), ExpiryTime: expiry, Permissions: perms.String(), ContainerName: a.Container}.SignWithSharedKey(a.cred)
	if err != nil {
		t.Fatal(err)
	}
	return q.Encode(), q.Signature()
}

// Destination is the barman destinationPath for a prefix in this container (emulator form).
func (a *Azure) Destination(prefix string) string {
	return a.Endpoint + "/" + a.Account + "/" + a.Container + "/" + prefix
}

// Snapshot lists every committed blob (name → ETag).
func (a *Azure) Snapshot(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	p := a.c.NewListBlobsFlatPager(nil)
	for p.More() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("azure snapshot: %v", err)
		}
		for _, b := range page.Segment.BlobItems {
			out[*b.Name] = string(*b.Properties.ETag)
		}
	}
	return out
}

// Put writes a blob with the independent client.
func (a *Azure) Put(t testing.TB, name string, data []byte) {
	t.Helper()
	if _, err := a.c.NewBlockBlobClient(name).UploadBuffer(context.Background(), data, &blockblob.UploadBufferOptions{}); err != nil {
		t.Fatalf("azure put %s: %v", name, err)
	}
}

// Delete removes a blob with the independent client.
func (a *Azure) Delete(t testing.TB, name string) {
	t.Helper()
	if _, err := a.c.NewBlobClient(name).Delete(context.Background(), nil); err != nil {
		t.Fatalf("azure delete %s: %v", name, err)
	}
}

// Get reads a blob with the independent client.
func (a *Azure) Get(t testing.TB, name string) []byte {
	t.Helper()
	resp, err := a.c.NewBlobClient(name).DownloadStream(context.Background(), nil)
	if err != nil {
		t.Fatalf("azure get %s: %v", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}
