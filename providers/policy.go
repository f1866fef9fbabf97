package providers

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
)

// Access is what barman-cloud does with a target's folder.
type Access string

// Accesses.
const (
	// ReadWrite: a backup target — WAL archive, base backups, the catalog, WAL restore and
	// retention (deletes).
	ReadWrite Access = "read-write"
	// ReadOnly: a recovery or replica source — listing and reading only.
	ReadOnly Access = "read"
)

// PolicyTarget is one target a least-privilege grant is made for.
type PolicyTarget struct {
	ID     string
	Access Access
	Loc    Location
	Conf   *manifest.BarmanObjectStore
}

// Grant is one target's part of a Policy: its folder and what may be done there.
type Grant struct {
	Target string `json:"target"`
	Access Access `json:"access"`
	// Folder is <prefix>/<serverName>/, the only place barman-cloud reads and writes for it.
	Folder string `json:"folder"`
}

// SAS is the shared access signature an Azure identity needs.
type SAS struct {
	Permissions string `json:"permissions"` // the sp letters, in Azure's canonical order
	// SignedResource is sr: "c", a service SAS on the container.
	SignedResource string `json:"signedResource"`
	// ResourceTypes is srt, for an account SAS instead: "co" (container and object).
	ResourceTypes string `json:"resourceTypes"`
	// Expiry is the suggested lifetime; the Secret must be rotated before it ends.
	Expiry string `json:"expiry"`
}

// RoleGrant is a role given to an identity on a scope, optionally under a condition.
type RoleGrant struct {
	Role      string `json:"role"`
	Scope     string `json:"scope"`
	Member    string `json:"member"`
	Condition string `json:"condition,omitempty"`
	Why       string `json:"why,omitempty"`
}

// Policy is the least privilege one identity needs on one bucket (container) for every target
// that uses it: the provider's own document and the commands that apply it.
type Policy struct {
	Provider string  `json:"provider"`
	Endpoint string  `json:"endpoint,omitempty"`
	Account  string  `json:"account,omitempty"`
	Bucket   string  `json:"bucket"`
	Identity string  `json:"identity"`
	Grants   []Grant `json:"grants"`
	// Document is the provider's policy document (S3: the IAM policy JSON, also a MinIO policy).
	Document any         `json:"document,omitempty"`
	SAS      *SAS        `json:"sas,omitempty"`
	Roles    []RoleGrant `json:"roles,omitempty"`
	// Commands apply the policy (shell, ready to run; placeholders are in <angle brackets>).
	Commands []string `json:"commands"`
	Notes    []string `json:"notes,omitempty"`
}

// PolicyRequest asks for the grant of one identity on one bucket.
type PolicyRequest struct {
	// Targets all use this provider, endpoint, bucket (container) and identity.
	Targets []PolicyTarget
	// Principal names the identity when known (the workload-identity annotation's value).
	Principal string
	// Name names the policy (files, policy names): letters, digits and hyphens.
	Name string
}

// Policer is implemented by drivers that can state the least privilege barman-cloud needs.
type Policer interface {
	// Policy returns the grant covering every target of the request: each folder gets what its
	// target needs and no more, whichever other targets share the bucket.
	Policy(r PolicyRequest) Policy
}

// Grants returns the grants of ts, sorted by folder; a folder both read and written is
// read-write once.
func Grants(ts []PolicyTarget) []Grant {
	var out []Grant
	for _, t := range ts {
		out = append(out, Grant{Target: t.ID, Access: t.Access, Folder: t.Loc.Base()})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Folder != out[j].Folder {
			return out[i].Folder < out[j].Folder
		}
		return out[i].Target < out[j].Target
	})
	return out
}

// Folders returns the distinct folders of ts with access a; a folder also written is not
// listed as only read.
func Folders(ts []PolicyTarget, a Access) []string {
	rw := map[string]bool{}
	for _, t := range ts {
		if t.Access == ReadWrite {
			rw[t.Loc.Base()] = true
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, t := range ts {
		f := t.Loc.Base()
		if t.Access != a || seen[f] || (a == ReadOnly && rw[f]) {
			continue
		}
		seen[f] = true
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// PolicyName is a name for the policy of bucket (letters, digits and hyphens), e.g. for a file.
func PolicyName(bucket string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(bucket) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := "cnpg-barman-" + strings.Trim(b.String(), "-")
	if n > 1 {
		name += fmt.Sprintf("-%d", n)
	}
	return name
}

// URL is the endpoint's URL as text ("" when unknown).
func (l Location) URL() string {
	if l.Endpoint == nil {
		return ""
	}
	return l.Endpoint.String()
}
