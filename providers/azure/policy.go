package azure

import (
	"fmt"
	"strings"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// Roles and SAS permissions barman-cloud 3.13 (azure-storage-blob) needs.
//
// A backup target: upload_blob(overwrite=True) (Put Blob: w; c would only create new blobs,
// and a retried WAL or backup.info overwrites), stage_block and commit_block_list for base
// backups (Put Block, Put Block List: w), download_blob and get_blob_properties (r),
// list_blobs (l) and delete_blobs (Blob Batch of Delete Blob: d). A source: r and l. Every
// command first checks the container with list_blobs() (l: a container SAS cannot call exists()).
const (
	RoleContributor = "Storage Blob Data Contributor"
	RoleReader      = "Storage Blob Data Reader"
	SASReadWrite    = "rwdl"
	SASRead         = "rl"
	// SASExpiry is the suggested lifetime of a SAS: rotate the Secret before it ends.
	SASExpiry = "90 days"
)

// Policy is the data-plane role on the container and, for SAS users, the SAS permissions.
func (Driver) Policy(r providers.PolicyRequest) providers.Policy {
	ts := r.Targets
	loc := ts[0].Loc
	write := len(providers.Folders(ts, providers.ReadWrite)) > 0
	role, perms := RoleReader, SASRead
	if write {
		role, perms = RoleContributor, SASReadWrite
	}
	member := r.Principal
	if member == "" {
		member = "<principal-id>"
	}
	scope := fmt.Sprintf("$(az storage account show --name %s --query id -o tsv)/blobServices/default/containers/%s", providers.ShellQuote(loc.Account), loc.Bucket)
	p := providers.Policy{Provider: "azure", Endpoint: loc.URL(), Account: loc.Account, Bucket: loc.Bucket, Grants: providers.Grants(ts),
		Roles: []providers.RoleGrant{{Role: role, Member: member,
			Scope: fmt.Sprintf("/subscriptions/<subscription-id>/resourceGroups/<resource-group>/providers/Microsoft.Storage/storageAccounts/%s/blobServices/default/containers/%s", loc.Account, loc.Bucket)}},
		SAS: &providers.SAS{Permissions: perms, SignedResource: "c", ResourceTypes: "co", Expiry: SASExpiry}}
	https := ""
	if loc.Endpoint != nil && loc.Endpoint.Scheme == "https" {
		https = " --https-only"
	}
	var sas, aad, key bool
	for _, t := range ts {
		if cr := t.Conf.AzureCredentials; cr != nil {
			sas = sas || cr.StorageSasToken != nil || cr.ConnectionString != nil
			aad = aad || cr.InheritFromAzureAD || cr.UseDefaultAzureCredentials
			key = key || cr.StorageKey != nil
		}
	}
	roleCmd := fmt.Sprintf("az role assignment create --role %s --assignee %s --scope \"%s\"", providers.ShellQuote(role), providers.ShellQuote(member), scope)
	sasCmd := fmt.Sprintf("az storage container generate-sas --account-name %s --name %s --permissions %s --expiry \"$(date -u -d '+90 days' +%%Y-%%m-%%dT%%H:%%MZ)\"%s -o tsv",
		providers.ShellQuote(loc.Account), providers.ShellQuote(loc.Bucket), perms, https)
	if aad && !sas {
		p.Commands = []string{roleCmd, "# or, with a SAS token instead (azureCredentials.storageSasToken):", sasCmd}
	} else {
		p.Commands = []string{sasCmd, "# or, with an Azure AD identity instead (inheritFromAzureAD / useDefaultAzureCredentials):", roleCmd}
	}
	what := "lists and reads (a source)"
	if write {
		what = "archives WAL, uploads base backups (blocks), lists, restores and deletes (retention); no a (append) or c (create): its uploads overwrite, which needs w"
	}
	p.Notes = append(p.Notes,
		fmt.Sprintf("SAS permissions %q on the container (sr=c; for an account SAS: ss=b, srt=co, the same sp): barman-cloud %s", perms, what),
		"a SAS or role assignment covers the whole container: Azure cannot narrow it to a folder without an ABAC condition on the blob path, so targets sharing a container share one grant")
	if key {
		p.Notes = append(p.Notes, "azureCredentials.storageKey is the account key: it allows everything on the storage account; replace it by a SAS with these permissions")
	}
	if strings.Contains(p.Endpoint, "://") && !strings.HasSuffix(loc.Endpoint.Host, BlobDomain) {
		p.Notes = append(p.Notes, "an emulator or compatible store: the az commands apply to Azure itself; give the emulator a SAS with the same letters")
	}
	return p
}
