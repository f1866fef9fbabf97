// Package azure is the provider for Azure Blob Storage and compatible stores (Azurite), on the
// azblob SDK. It parses destinations and picks credentials exactly as barman-cloud does.
package azure

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// Driver is the Azure Blob Storage provider.
type Driver struct{}

// Info describes the provider.
func (Driver) Info() providers.Info {
	return providers.Info{Name: "azure", CredentialsField: "azureCredentials", Scheme: "http(s):// (Azure)", DestinationForm: "https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH",
		BucketNoun: "container", IdentityAnnotation: "azure.workload.identity/client-id", IdentityName: "an Azure AD identity (workload identity)", TLS: providers.Trust{Client: "requests with urllib3 ≥ 2.4 on Python 3.13 (the Barman Cloud plugin sidecar ≥ v0.4.0, CNPG's system-trixie images)", PartialChain: true, Strict: true},
		SidecarIdentity: "current Barman Cloud plugin releases do not project the Azure workload identity token (AZURE_FEDERATED_TOKEN_FILE) into the plugin's sidecar, where barman-cloud runs"}
}

// Serves: barman-cloud takes every http(s):// destination for Azure Blob Storage.
func (Driver) Serves(destinationPath string) bool {
	return strings.HasPrefix(destinationPath, "https://") || strings.HasPrefix(destinationPath, "http://")
}

// Credentials reads azureCredentials.
func (Driver) Credentials(c *manifest.BarmanObjectStore) providers.Credentials {
	cr := c.AzureCredentials
	if cr == nil {
		return providers.Credentials{}
	}
	out := providers.Credentials{Set: true, Refs: providers.Refs(cr.ConnectionString, cr.StorageAccount, cr.StorageKey, cr.StorageSasToken)}
	switch {
	case cr.InheritFromAzureAD:
		out.PodIdentity = "azureCredentials.inheritFromAzureAD"
	case cr.UseDefaultAzureCredentials:
		out.PodIdentity = "azureCredentials.useDefaultAzureCredentials"
	}
	return out
}

// PutOptions: barman-cloud sets the configured tags as blob index tags; encryption is an S3 setting.
func (Driver) PutOptions(c *manifest.BarmanObjectStore) providers.PutOptions {
	return providers.PutOptions{Tags: c.Tags}
}

// BlobDomain is the host suffix barman-cloud recognises as real Azure (AZURE_BLOB_STORAGE_DOMAIN).
const BlobDomain = "blob.core.windows.net"

// sovereignDomains are real Azure clouds that barman-cloud treats as emulators.
var sovereignDomains = []string{"blob.core.usgovcloudapi.net", "blob.core.chinacloudapi.cn", "blob.core.cloudapi.de"}

// emulated reports whether barman-cloud treats the destination as an emulator / compatible store.
func emulated(u *url.URL) bool { return !strings.HasSuffix(u.Host, BlobDomain) }

// Validate parses an Azure destinationPath the way barman-cloud does and applies CNPG's Azure rules.
func (Driver) Validate(t *providers.Target) (providers.Location, []providers.Finding) {
	c := t.Conf
	loc := providers.Location{Provider: "azure", ServerName: t.ServerName}
	var fs []providers.Finding
	dp := t.F("destinationPath")
	const form = "use https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH (or http://HOST:PORT/ACCOUNT/CONTAINER/PATH for an emulator)"
	u, err := url.Parse(c.DestinationPath)
	if err != nil || u.Host == "" {
		return loc, []providers.Finding{providers.Failf(dp, form, "not a valid URL: %q", c.DestinationPath)}
	}
	segs := strings.Split(u.Path, "/") // barman: parsed_url.path.split("/")
	if emulated(u) {
		if len(segs) < 3 || segs[1] == "" || segs[2] == "" {
			fs = append(fs, providers.Failf(dp, form, "emulated storage URL %q is malformed: barman-cloud needs /ACCOUNT/CONTAINER after the host", c.DestinationPath))
		} else {
			loc.Account, loc.Bucket, loc.Prefix = segs[1], segs[2], strings.Join(segs[3:], "/")
		}
		loc.Endpoint = &url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/" + loc.Account}
		cr := c.AzureCredentials
		if cr != nil && !exportsConnectionString(cr) {
			why := "barman-cloud treats any host not ending in " + BlobDomain + " as an emulator and then requires a connection string (\"A connection string must be provided when using emulated storage\")"
			if cr.ConnectionString != nil {
				why += "; CNPG does not pass connectionString on when inheritFromAzureAD or useDefaultAzureCredentials is set"
			}
			for _, d := range sovereignDomains {
				if strings.HasSuffix(u.Host, d) {
					why = u.Host + " is a sovereign Azure cloud, but barman-cloud only recognises " + BlobDomain + ": it treats the host as an emulator and requires a connection string"
				}
			}
			fs = append(fs, providers.Failf(t.F("azureCredentials"), "use azureCredentials.connectionString (with BlobEndpoint=… for this host)", "%s", why))
		}
	} else {
		if len(segs) < 2 || segs[1] == "" {
			fs = append(fs, providers.Failf(dp, form, "azure blob storage URL %q is malformed: no container", c.DestinationPath))
		} else {
			loc.Bucket, loc.Prefix = segs[1], strings.Join(segs[2:], "/")
		}
		loc.Account = strings.TrimSuffix(u.Host, "."+BlobDomain)
		loc.Endpoint = &url.URL{Scheme: "https", Host: u.Host}
		if u.Scheme == "http" {
			fs = append(fs, providers.Warnf(dp, "use https://", "barman-cloud connects to %s over https whatever the scheme says", u.Host))
		}
	}
	if strings.Contains(loc.Prefix, "//") {
		fs = append(fs, providers.Warnf(dp, "remove the repeated slash", "double slash in the path: barman-cloud keeps it in every blob name"))
	}
	if c.EndpointURL != "" {
		fs = append(fs, providers.Warnf(t.F("endpointURL"), "remove endpointURL; put the account's host in destinationPath (or BlobEndpoint in the connection string)", "endpointURL is ignored for Azure: barman-cloud takes the endpoint from destinationPath or the connection string"))
	}
	for _, e := range []struct {
		set bool
		f   string
	}{{c.Wal != nil && providers.ValidEncryption(c.Wal.Encryption), "wal.encryption"}, {c.Data != nil && providers.ValidEncryption(c.Data.Encryption), "data.encryption"}} {
		if e.set { // an invalid value fails the CRD enum (the config check)
			fs = append(fs, providers.Warnf(t.F(e.f), "remove it, or use an encryption scope on the storage account", "encryption (AES256/aws:kms) is an S3 setting; it has no effect on Azure"))
		}
	}
	cr := c.AzureCredentials
	cf := t.F("azureCredentials")
	if cr == nil {
		fs = append(fs, providers.Failf(cf, "add azureCredentials", "an Azure destination needs azureCredentials"))
		return loc, fs
	}
	var modes []string
	for _, m := range []struct {
		on   bool
		name string
	}{{cr.StorageKey != nil, "storageKey"}, {cr.StorageSasToken != nil, "storageSasToken"}, {cr.InheritFromAzureAD, "inheritFromAzureAD"}, {cr.UseDefaultAzureCredentials, "useDefaultAzureCredentials"}} {
		if m.on {
			modes = append(modes, m.name)
		}
	}
	const oneOf = "when connection string is not specified, one and only one of storage key, storage SAS token, Azure AD authentication, or default Azure credentials is required"
	switch {
	case cr.ConnectionString != nil && (len(modes) > 0 || cr.StorageAccount != nil):
		others := modes
		if cr.StorageAccount != nil {
			others = append([]string{"storageAccount"}, others...)
		}
		fs = append(fs, t.CredentialRule(cf, "keep connectionString alone, or remove it", "connectionString is set together with "+strings.Join(others, ", "),
			"when connection string is specified, the other parameters must be empty", providers.Warnf("", "", "%s", azureWinner(cr))))
	case cr.ConnectionString != nil:
	case len(modes) == 0:
		fs = append(fs, t.CredentialRule(cf, "set connectionString, storageAccount with storageKey or storageSasToken, inheritFromAzureAD or useDefaultAzureCredentials", "no way to authenticate is set",
			oneOf, providers.Warnf("", "", "%s", azureWinner(cr))))
	case len(modes) > 1:
		fs = append(fs, t.CredentialRule(cf, "keep exactly one of them", "more than one of "+strings.Join(modes, ", ")+" is set", oneOf, providers.Warnf("", "", "%s", azureWinner(cr))))
	}
	if (cr.StorageKey != nil || cr.StorageSasToken != nil) && cr.StorageAccount == nil && cr.ConnectionString == nil && len(modes) == 1 {
		fs = append(fs, t.CredentialRule(cf+".storageAccount", "add the storageAccount Secret reference", "storageKey or storageSasToken is set without storageAccount",
			"storage account must be specified when using storage key or SAS token", providers.Warnf("", "", "at run time barman-cloud takes the account from destinationPath")))
	}
	return loc, fs
}

// exportsConnectionString: CNPG passes connectionString to barman-cloud only when no Azure AD
// mode is set (those return before any variable is exported).
func exportsConnectionString(cr *manifest.AzureCredentials) bool {
	return cr.ConnectionString != nil && !cr.InheritFromAzureAD && !cr.UseDefaultAzureCredentials
}

// azureWinner says which credential barman-cloud uses at run time, in its order: the
// --credential flag CNPG derives from useDefaultAzureCredentials or inheritFromAzureAD, then
// AZURE_STORAGE_CONNECTION_STRING, the SAS token, the key, and Azure's default credentials.
func azureWinner(cr *manifest.AzureCredentials) string {
	switch {
	case cr.UseDefaultAzureCredentials:
		return "useDefaultAzureCredentials wins at run time (barman-cloud gets --credential default); the other settings are not passed on"
	case cr.InheritFromAzureAD:
		return "inheritFromAzureAD wins at run time (barman-cloud gets --credential managed-identity); the other settings are not passed on"
	case cr.ConnectionString != nil:
		return "the connection string wins at run time; storageAccount, storageKey and storageSasToken are ignored"
	case cr.StorageSasToken != nil:
		return "the SAS token wins at run time; storageKey is ignored"
	case cr.StorageKey != nil:
		return "the storage key is used at run time"
	}
	return "at run time barman-cloud falls back to Azure's default credentials (DefaultAzureCredential)"
}

// CA returns the endpointCA bundle (REQUESTS_CA_BUNDLE for barman-cloud).
func (Driver) CA(ctx context.Context, t *providers.Target) ([]byte, []providers.Finding) {
	return providers.EndpointCA(ctx, t)
}

// Connect resolves credentials in barman-cloud's order: connection string, SAS token, account key,
// then Azure AD (managed identity or the default chain).
func (Driver) Connect(ctx context.Context, t *providers.Target, loc providers.Location, n *providers.Net) (providers.Store, string, []providers.Finding) {
	cr := t.Conf.AzureCredentials
	red := &providers.Redactor{}
	red.Add(t.Env["AZURE_CLIENT_SECRET"]) // the default chain may use it (see defaultCredential)
	opts := &container.ClientOptions{ClientOptions: policy.ClientOptions{
		Transport: n.Client,
		Retry:     policy.RetryOptions{MaxRetries: 3, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 2 * time.Second},
		Telemetry: policy.TelemetryOptions{Disabled: true},
	}}
	fail := func(f *providers.Finding) (providers.Store, string, []providers.Finding) {
		return nil, "", []providers.Finding{*f}
	}
	var (
		c        *container.Client
		svc      *service.Client // the account's service client, for what only it shows (soft delete)
		err      error
		identity string
		fs       []providers.Finding // credential lifetimes and scopes (SAS tokens)
	)
	sopts := &service.ClientOptions{ClientOptions: opts.ClientOptions}
	switch {
	case exportsConnectionString(cr):
		cs, f := t.Ref(ctx, cr.ConnectionString, "azureCredentials.connectionString")
		if f != nil {
			return fail(f)
		}
		red.Add(string(cs))
		for _, part := range strings.Split(string(cs), ";") {
			if k, v, ok := strings.Cut(part, "="); ok && (strings.EqualFold(k, "AccountKey") || strings.EqualFold(k, "SharedAccessSignature")) {
				red.Add(v)
			}
		}
		c, err = container.NewClientFromConnectionString(strings.TrimSpace(string(cs)), loc.Bucket, opts)
		if err == nil {
			svc, _ = service.NewClientFromConnectionString(strings.TrimSpace(string(cs)), sopts)
			if tok := connSAS(string(cs)); tok != "" {
				fs = append(fs, SASFindings(tok, t.F("azureCredentials.connectionString"), loc, time.Now())...)
			}
		}
		if err != nil {
			f := providers.Failf(t.F("azureCredentials.connectionString"), "use the connection string from the storage account's Access keys page", "not a valid connection string: %s", red.Redact(err.Error()))
			return fail(&f)
		}
		identity = "connection string"
		if acct := accountOf(string(cs)); acct != "" {
			identity += " for account " + acct
			if loc.Account != "" && !strings.EqualFold(acct, loc.Account) {
				f := providers.Warnf(t.F("destinationPath"), "make destinationPath and the connection string name the same account", "destinationPath names account %q but the connection string is for %q; barman-cloud uses the connection string", loc.Account, acct)
				u, _ := url.Parse(c.URL())
				return &Store{c: c, svc: svc, loc: loc, red: red, endpoint: endpointOf(u)}, identity, append(fs, f)
			}
		}
	default:
		// The --credential flag CNPG derives from the Azure AD modes wins over every variable.
		ad := cr.InheritFromAzureAD || cr.UseDefaultAzureCredentials
		account := loc.Account
		if cr.StorageAccount != nil && !ad {
			a, f := t.Ref(ctx, cr.StorageAccount, "azureCredentials.storageAccount")
			if f != nil {
				return fail(f)
			}
			account = strings.TrimSpace(string(a))
		}
		surl := strings.TrimSuffix(loc.Endpoint.String(), "/")
		curl := fmt.Sprintf("%s/%s", surl, loc.Bucket)
		switch {
		case !ad && cr.StorageSasToken != nil:
			sas, f := t.Ref(ctx, cr.StorageSasToken, "azureCredentials.storageSasToken")
			if f != nil {
				return fail(f)
			}
			tok := strings.TrimPrefix(strings.TrimSpace(string(sas)), "?")
			red.Add(tok)
			if q, err := url.ParseQuery(tok); err == nil {
				red.Add(q.Get("sig"))
			}
			c, err = container.NewClientWithNoCredential(curl+"?"+tok, opts)
			svc, _ = service.NewClientWithNoCredential(surl+"/?"+tok, sopts)
			fs = append(fs, SASFindings(tok, t.F("azureCredentials.storageSasToken"), loc, time.Now())...)
			identity = fmt.Sprintf("SAS token for account %s", account)
			if q, perr := url.ParseQuery(tok); perr == nil && q.Get("sp") != "" {
				identity += " (permissions " + q.Get("sp") + ")"
			}
		case !ad && cr.StorageKey != nil:
			key, f := t.Ref(ctx, cr.StorageKey, "azureCredentials.storageKey")
			if f != nil {
				return fail(f)
			}
			red.Add(string(key))
			cred, kerr := container.NewSharedKeyCredential(account, strings.TrimSpace(string(key)))
			if kerr != nil {
				f := providers.Failf(t.F("azureCredentials.storageKey"), "use the storage account's access key (base64)", "the account key is not valid: it must be base64")
				return fail(&f)
			}
			c, err = container.NewClientWithSharedKeyCredential(curl, cred, opts)
			if skey, kerr := service.NewSharedKeyCredential(account, strings.TrimSpace(string(key))); kerr == nil {
				svc, _ = service.NewClientWithSharedKeyCredential(surl+"/", skey, sopts)
			}
			identity = "shared key for account " + account
		case t.Offline:
			return nil, "", []providers.Finding{providers.Warnf(t.F("azureCredentials"), "", "Azure AD identity not resolved (--offline)")}
		default:
			var cred azcore.TokenCredential
			field := "azureCredentials.useDefaultAzureCredentials"
			if cr.InheritFromAzureAD && !cr.UseDefaultAzureCredentials {
				field = "azureCredentials.inheritFromAzureAD"
				cred, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: n.Client}})
				identity = "managed identity (Azure AD)"
			} else {
				cred, identity, err = defaultCredential(t.Env, azcore.ClientOptions{Transport: n.Client})
			}
			if err == nil {
				_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://storage.azure.com/.default"}})
			}
			if err != nil {
				f := providers.Failf(t.F(field), "run with the Cluster's ServiceAccount carrying azure.workload.identity/client-id (workload identity) or on a node with a managed identity", "no Azure AD token: %s", providers.FirstLine(red.Redact(err.Error())))
				return fail(&f)
			}
			c, err = container.NewClient(curl, cred, opts)
			svc, _ = service.NewClient(surl+"/", cred, sopts)
		}
		if err != nil {
			f := providers.Failf(t.Field, "", "cannot open the container client: %s", red.Redact(err.Error()))
			return fail(&f)
		}
	}
	u, _ := url.Parse(c.URL())
	return &Store{c: c, svc: svc, loc: loc, red: red, endpoint: endpointOf(u)}, identity, fs
}

func endpointOf(u *url.URL) *url.URL {
	if u == nil {
		return &url.URL{}
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}
}

func accountOf(cs string) string {
	for _, part := range strings.Split(cs, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && strings.EqualFold(k, "AccountName") {
			return v
		}
	}
	return ""
}

// Store is an Azure container.
type Store struct {
	c        *container.Client
	svc      *service.Client // nil when none could be made
	loc      providers.Location
	red      *providers.Redactor
	endpoint *url.URL
}

// Endpoint is the URL the client talks to.
func (s *Store) Endpoint() *url.URL { return s.endpoint }

// MinPartSize: Azure blocks have no minimum size; a small first block keeps the probe cheap.
func (s *Store) MinPartSize() int { return 64 << 10 }

// CheckBucket lists one blob under the prefix, as barman-cloud tests connectivity (a
// container-scoped SAS cannot call "container exists").
func (s *Store) CheckBucket(ctx context.Context) error {
	prefix := s.loc.Base()
	p := s.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix, MaxResults: ptr(int32(1))})
	_, err := p.NextPage(ctx)
	return providers.Classifier(s.classify).Err("ListBlobs", err)
}

func ptr[T any](v T) *T { return &v }

// listPage is the number of blobs asked for per listing page.
const listPage = 1000

// List lists blob names under prefix (with a delimiter: one level, with sub-prefixes).
func (s *Store) List(ctx context.Context, prefix, delimiter string, max int) (providers.Listing, error) {
	var out providers.Listing
	// pages of 1,000 blobs (Azure's default is 5,000): every page stays far below the response cap
	mr := ptr(int32(listPage))
	if max > 0 && max < listPage {
		mr = ptr(int32(max))
	}
	// next returns one page of either pager, and whether more pages follow.
	var next func() ([]*container.BlobItem, []*container.BlobPrefix, bool, error)
	if delimiter != "" {
		p := s.c.NewListBlobsHierarchyPager(delimiter, &container.ListBlobsHierarchyOptions{Prefix: &prefix, MaxResults: mr})
		next = func() ([]*container.BlobItem, []*container.BlobPrefix, bool, error) {
			page, err := p.NextPage(ctx)
			if err != nil || page.Segment == nil { // an empty answer is an empty page
				return nil, nil, false, err
			}
			return page.Segment.BlobItems, page.Segment.BlobPrefixes, p.More(), nil
		}
	} else {
		p := s.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix, MaxResults: mr})
		next = func() ([]*container.BlobItem, []*container.BlobPrefix, bool, error) {
			page, err := p.NextPage(ctx)
			if err != nil || page.Segment == nil {
				return nil, nil, false, err
			}
			return page.Segment.BlobItems, nil, p.More(), nil
		}
	}
	for pages, more := 0, true; more; pages++ {
		if pages == providers.ListPages(max, listPage) {
			out.Truncated = true
			break
		}
		items, prefixes, m, err := next()
		if err != nil {
			return out, s.classify("ListBlobs", err)
		}
		more = m
		for _, b := range items {
			if b != nil {
				out.Keys = append(out.Keys, object(b.Name, b.Properties))
			}
		}
		for _, bp := range prefixes {
			if bp != nil {
				out.Prefixes = append(out.Prefixes, deref(bp.Name))
			}
		}
		if out.Clip(max, more) {
			break
		}
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func object(name *string, p *container.BlobProperties) providers.Object {
	o := providers.Object{Key: deref(name)}
	if p != nil {
		if p.ContentLength != nil {
			o.Size = *p.ContentLength
		}
		if p.LastModified != nil {
			o.Modified = *p.LastModified
		}
	}
	return o
}

type rsc struct{ *bytes.Reader }

func (rsc) Close() error { return nil }

func body(b []byte) io.ReadSeekCloser { return rsc{bytes.NewReader(b)} }

// Put uploads a block blob, with index tags when the configuration sets tags.
func (s *Store) Put(ctx context.Context, key string, data []byte, o providers.PutOptions) error {
	opts := &blockblob.UploadOptions{}
	if len(o.Tags) > 0 {
		opts.Tags = o.Tags
	}
	_, err := s.c.NewBlockBlobClient(key).Upload(ctx, body(data), opts)
	return providers.Classifier(s.classify).Err("PutBlob", err)
}

// Get downloads the first limit bytes of a blob (a ranged Get Blob).
func (s *Store) Get(ctx context.Context, key string, limit int64) ([]byte, error) {
	resp, err := s.c.NewBlobClient(key).DownloadStream(ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: 0, Count: limit}})
	if err != nil {
		e := s.classify("GetBlob", err)
		if e.Status == http.StatusRequestedRangeNotSatisfiable {
			return nil, nil // an empty blob has no byte 0
		}
		return nil, e
	}
	defer resp.Body.Close()
	b, err := providers.ReadAll(resp.Body, limit)
	if err != nil {
		return nil, s.classify("GetBlob", err)
	}
	return b, nil
}

// Delete deletes a blob.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.c.NewBlobClient(key).Delete(ctx, nil)
	return providers.Classifier(s.classify).Err("DeleteBlob", err)
}

// DeleteBatch deletes blobs with the Blob Batch API (barman-cloud's delete_blobs, 256 at most per
// batch); a sub-request that fails (other than 404, which barman only warns about) is an error.
func (s *Store) DeleteBatch(ctx context.Context, keys []string) error {
	bb, err := s.c.NewBatchBuilder()
	if err != nil {
		return s.classify("BlobBatch", err)
	}
	for _, k := range keys {
		if err := bb.Delete(k, nil); err != nil {
			return s.classify("BlobBatch", err)
		}
	}
	resp, err := s.c.SubmitBatch(ctx, bb, nil)
	if err != nil {
		return s.classify("BlobBatch", err)
	}
	for _, r := range resp.Responses {
		if r.Error != nil {
			var re *azcore.ResponseError
			if errors.As(r.Error, &re) && re.StatusCode == http.StatusNotFound {
				continue
			}
			e := s.classify("BlobBatch", r.Error)
			e.Msg = fmt.Sprintf("%s (deleting %s)", e.Msg, s.red.Redact(deref(r.BlobName)))
			return e
		}
	}
	return nil
}

// Exists reports whether a blob exists.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	_, err := s.c.NewBlobClient(key).GetProperties(ctx, nil)
	if err == nil {
		return true, nil
	}
	e := s.classify("GetBlobProperties", err)
	if e.Kind == providers.KindNotFound {
		return false, nil
	}
	return false, e
}

// StartMultipart stages the parts as blocks, concurrently (how large blobs are uploaded).
func (s *Store) StartMultipart(ctx context.Context, key string, parts [][]byte, o providers.PutOptions) (providers.Upload, error) {
	bb := s.c.NewBlockBlobClient(key)
	ids := make([]string, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		ids[i] = base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("cnpg-preflight-%06d", i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := bb.StageBlock(ctx, ids[i], body(p), nil); err != nil {
				errs[i] = s.classify("PutBlock", err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err // uncommitted blocks are invisible and discarded by Azure after 7 days
		}
	}
	return &blockUpload{s: s, bb: bb, ids: ids, tags: o.Tags}, nil
}

type blockUpload struct {
	s    *Store
	bb   *blockblob.Client
	ids  []string
	tags map[string]string
}

// Complete commits the block list.
func (u *blockUpload) Complete(ctx context.Context) error {
	opts := &blockblob.CommitBlockListOptions{}
	if len(u.tags) > 0 {
		opts.Tags = u.tags
	}
	_, err := u.bb.CommitBlockList(ctx, u.ids, opts)
	return providers.Classifier(u.s.classify).Err("PutBlockList", err)
}

// Abort does nothing on the store: Azure has no call to discard staged blocks. Uncommitted
// blocks are invisible (no blob exists until the block list is committed) and Azure deletes them
// after 7 days; nothing has to be named as left behind.
func (u *blockUpload) Abort(context.Context) error { return nil }

// classify turns an azblob error into a redacted *providers.Error. The SDK's own message carries
// the request URL (with any SAS signature), so it is never used verbatim.
func (s *Store) classify(op string, err error) *providers.Error {
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode >= 300 && re.StatusCode < 400 && re.RawResponse != nil {
		e := providers.RedirectError(op, re.StatusCode, re.RawResponse.Header)
		e.Err = err
		return e
	}
	if errors.As(err, &re) {
		code, status := re.ErrorCode, re.StatusCode
		e := &providers.Error{Op: op, Code: code, Status: status, Kind: providers.KindOther, Err: err}
		switch {
		case code == "ContainerNotFound" || code == "BlobNotFound" || code == "ResourceNotFound" || status == http.StatusNotFound:
			e.Kind = providers.KindNotFound
			if code == "ContainerNotFound" {
				e.Fix = fmt.Sprintf("create the container %q before enabling backups, or let barman-cloud create it (needs a credential allowed to create containers)", s.loc.Bucket)
			}
		case code == "AuthenticationFailed" || code == "AuthorizationFailure" || code == "InvalidAuthenticationInfo" || code == "NoAuthenticationInformation":
			e.Kind = providers.KindAuth
			e.Fix = "check the account key, SAS token or connection string in the referenced Secret (and the storage account's firewall / network rules)"
		case code == "AuthorizationPermissionMismatch" || code == "AuthorizationResourceTypeMismatch" || code == "AuthorizationServiceMismatch" || status == http.StatusForbidden:
			e.Kind = providers.KindDenied
			e.Fix = s.deniedFix(op)
		case status == http.StatusServiceUnavailable || code == "ServerBusy":
			e.Kind = providers.KindThrottled
		case code == "FeatureNotSupported" || code == "InvalidHeaderValue" || code == "UnsupportedHeader" || status == http.StatusNotImplemented:
			e.Kind = providers.KindUnsupported
			e.Fix = "the store refuses a header barman-cloud sends for this configuration (blob index tags?): remove tags or use a store that supports them"
		}
		if code == "" {
			code = http.StatusText(status)
		}
		e.Msg = s.red.Redact(fmt.Sprintf("%s: %d %s (%s)", op, status, http.StatusText(status), code))
		return e
	}
	if ne := providers.NetError(op, err); ne != nil {
		ne.Msg = s.red.Redact(ne.Msg)
		return ne
	}
	return &providers.Error{Op: op, Kind: providers.KindOther, Err: err, Msg: s.red.Redact(op + ": " + providers.FirstLine(err.Error()))}
}

// deniedFix names the data-plane role or SAS permission an operation needs.
func (s *Store) deniedFix(op string) string {
	switch op {
	case "PutBlob", "PutBlock", "PutBlockList":
		return "assign the \"Storage Blob Data Contributor\" role on the container (or add w, write, to the SAS permissions: barman-cloud overwrites, and uploads blocks)"
	case "DeleteBlob", "BlobBatch":
		return "assign the \"Storage Blob Data Contributor\" role on the container (or add d, delete, to the SAS permissions): retention needs it"
	case "GetBlob", "GetBlobProperties":
		return "assign the \"Storage Blob Data Reader\" role or better (or add r, read, to the SAS permissions)"
	case "ListBlobs":
		return "assign the \"Storage Blob Data Reader\" role or better (or add l, list, to the SAS permissions)"
	}
	return "assign the \"Storage Blob Data Contributor\" role on the container"
}
