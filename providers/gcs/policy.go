package gcs

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// Roles barman-cloud 3.13 (google-cloud-storage) needs on a bucket. A backup target uploads
// (resumable uploads for base backups), reads, lists and deletes objects: roles/storage.objectUser
// (no IAM or ACL changes, unlike objectAdmin). A source reads and lists: objectViewer. Every
// command first checks that the bucket exists (bucket.exists(): storage.buckets.get), which no
// predefined role grants alone: a custom role with only that permission.
const (
	RoleObjectUser   = "roles/storage.objectUser"
	RoleObjectViewer = "roles/storage.objectViewer"
	BucketGetRoleID  = "cnpgBarmanBucketGet"
)

// celString quotes s as a CEL string literal.
func celString(s string) string { return strconv.Quote(s) }

// condition lets the role act on objects under the folders, and list only with a prefix inside
// them (storage.objects.list is checked against the bucket, with the list prefix as attribute).
func condition(bucket string, folders []string) string {
	var parts []string
	for _, f := range folders {
		parts = append(parts, fmt.Sprintf("resource.name.startsWith(%s)", celString("projects/_/buckets/"+bucket+"/objects/"+f)))
	}
	for _, f := range folders {
		parts = append(parts, fmt.Sprintf("api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(%s)", celString(f)))
	}
	return strings.Join(parts, " || ")
}

// Policy is one conditional role binding per access (objectUser on the backup folders,
// objectViewer on the source folders) and the bucket check.
func (Driver) Policy(r providers.PolicyRequest) providers.Policy {
	ts := r.Targets
	loc := ts[0].Loc
	member := "serviceAccount:<service-account-email>"
	if r.Principal != "" {
		member = "serviceAccount:" + r.Principal
	}
	p := providers.Policy{Provider: "gcs", Endpoint: loc.URL(), Bucket: loc.Bucket, Grants: providers.Grants(ts)}
	bucketRole := "projects/${PROJECT}/roles/" + BucketGetRoleID // in the commands
	p.Commands = append(p.Commands,
		"PROJECT=$(gcloud config get-value project)",
		fmt.Sprintf("gcloud iam roles describe %s --project=\"$PROJECT\" >/dev/null 2>&1 || gcloud iam roles create %s --project=\"$PROJECT\" --title='CNPG barman-cloud bucket check' --permissions=storage.buckets.get", BucketGetRoleID, BucketGetRoleID),
		fmt.Sprintf("gcloud storage buckets add-iam-policy-binding gs://%s --member=%s --role=\"%s\"", loc.Bucket, providers.ShellQuote(member), bucketRole))
	p.Roles = append(p.Roles, providers.RoleGrant{Role: "projects/<project-id>/roles/" + BucketGetRoleID, Scope: "gs://" + loc.Bucket, Member: member,
		Why: "barman-cloud checks the bucket first in every command (storage.buckets.get)"})
	for i, g := range []struct {
		access providers.Access
		role   string
		why    string
	}{{providers.ReadWrite, RoleObjectUser, "WAL archive, base backups, catalog, WAL restore, retention"}, {providers.ReadOnly, RoleObjectViewer, "a source: list and read"}} {
		folders := providers.Folders(ts, g.access)
		if len(folders) == 0 {
			continue
		}
		cond := condition(loc.Bucket, folders)
		title := fmt.Sprintf("%s-%d", r.Name, i+1)
		file := title + "-condition.yaml"
		p.Roles = append(p.Roles, providers.RoleGrant{Role: g.role, Scope: "gs://" + loc.Bucket, Member: member, Condition: cond, Why: g.why})
		p.Commands = append(p.Commands,
			fmt.Sprintf("cat > %s <<'EOF'\ntitle: %s\nexpression: %s\nEOF", file, title, yamlQuote(cond)),
			fmt.Sprintf("gcloud storage buckets add-iam-policy-binding gs://%s --member=%s --role=%s --condition-from-file=%s", loc.Bucket, providers.ShellQuote(member), g.role, file))
	}
	p.Notes = append(p.Notes,
		"the conditions need uniform bucket-level access (IAM conditions are refused on buckets with fine-grained ACLs)",
		"every listing barman-cloud makes starts with <prefix>/<serverName>/ (base/, wals/, a backup's folder): the objectListPrefix attribute allows exactly those")
	return p
}

// yamlQuote quotes s as a double-quoted YAML scalar.
func yamlQuote(s string) string { return strconv.Quote(s) }
