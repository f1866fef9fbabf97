package s3

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// IAMPolicy is an IAM policy document (also accepted by MinIO).
type IAMPolicy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of an IAMPolicy.
type Statement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// Statement IDs of the generated policy.
const (
	SidHeadBucket = "BarmanHeadBucket"
	SidList       = "BarmanListServerFolders"
	SidReadWrite  = "BarmanReadWriteServerFolders"
	SidRead       = "BarmanReadSourceFolders"
	SidTagging    = "BarmanObjectTags"
	SidKMS        = "BarmanKMS"
)

// What barman-cloud 3.13 (boto3) does with a backup target's folder, and the IAM action each
// needs: PutObject, CreateMultipartUpload, UploadPart and CompleteMultipartUpload are
// s3:PutObject (WAL archive, base backups, backup.info); GetObject and HeadObject are
// s3:GetObject (WAL restore, backup.info, restore); DeleteObjects is s3:DeleteObject for every
// key (retention, barman-cloud-backup-delete); AbortMultipartUpload ends a failed base-backup
// upload. A source is only read.
var (
	readWriteActions = []string{"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
	readActions      = []string{"s3:GetObject"}
)

// iamEscape escapes the characters IAM treats as wildcards or variables in resources and
// StringLike values (${*}, ${?}, ${$}), so that a folder name matches only itself.
func iamEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '$':
			b.WriteString("${" + string(r) + "}")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func objectARNs(bucket string, folders []string) []string {
	var out []string
	for _, f := range folders {
		out = append(out, "arn:aws:s3:::"+iamEscape(bucket)+"/"+iamEscape(f)+"*")
	}
	return out
}

// Policy is the IAM policy barman-cloud needs on one bucket for the targets of r: listing and
// HeadBucket on the bucket, object actions on each target's <prefix>/<serverName>/ only.
func (Driver) Policy(r providers.PolicyRequest) providers.Policy {
	ts := r.Targets
	loc := ts[0].Loc
	bucketARN := "arn:aws:s3:::" + iamEscape(loc.Bucket)
	rw, ro := providers.Folders(ts, providers.ReadWrite), providers.Folders(ts, providers.ReadOnly)
	var all []string
	for _, f := range append(append([]string{}, rw...), ro...) {
		all = append(all, iamEscape(f)+"*")
	}
	sort.Strings(all)
	doc := IAMPolicy{Version: "2012-10-17"}
	// barman-cloud calls HeadBucket first in every command; S3 authorizes it as s3:ListBucket,
	// and a HeadBucket carries no s3:prefix: only a grant for requests without one lets it through.
	doc.Statement = append(doc.Statement,
		Statement{Sid: SidHeadBucket, Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{bucketARN},
			Condition: map[string]map[string]any{"Null": {"s3:prefix": "true"}}},
		Statement{Sid: SidList, Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{bucketARN},
			Condition: map[string]map[string]any{"StringLike": {"s3:prefix": all}}})
	if len(rw) > 0 {
		doc.Statement = append(doc.Statement, Statement{Sid: SidReadWrite, Effect: "Allow", Action: readWriteActions, Resource: objectARNs(loc.Bucket, rw)})
	}
	if len(ro) > 0 {
		doc.Statement = append(doc.Statement, Statement{Sid: SidRead, Effect: "Allow", Action: readActions, Resource: objectARNs(loc.Bucket, ro)})
	}
	var tagged, kmsRW, kmsRO []string
	for _, t := range ts {
		f := t.Loc.Base()
		if t.Access == providers.ReadWrite && (len(t.Conf.Tags) > 0 || len(t.Conf.HistoryTags) > 0) {
			tagged = appendNew(tagged, f)
		}
		if walEnc(t.Conf) == "aws:kms" || dataEnc(t.Conf) == "aws:kms" {
			if t.Access == providers.ReadWrite {
				kmsRW = appendNew(kmsRW, f)
			} else {
				kmsRO = appendNew(kmsRO, f)
			}
		}
	}
	notes := []string{
		"s3:ListBucket without an s3:prefix (" + SidHeadBucket + ") is what HeadBucket needs: barman-cloud calls it first in every command, and S3 has no narrower grant for it; it also lets the identity list key names across the bucket (not read them)",
		"every listing barman-cloud makes starts with <prefix>/<serverName>/ (base/, wals/, a backup's folder), hence the s3:prefix condition of " + SidList,
	}
	if len(rw) > 0 {
		notes = append(notes, "s3:AbortMultipartUpload is used only when a base-backup upload fails (barman-cloud-backup aborts it so that no parts are left behind); a successful run never calls it")
	}
	if len(tagged) > 0 {
		sort.Strings(tagged)
		doc.Statement = append(doc.Statement, Statement{Sid: SidTagging, Effect: "Allow", Action: []string{"s3:PutObjectTagging"}, Resource: objectARNs(loc.Bucket, tagged)})
		notes = append(notes, "tags/historyTags are set: barman-cloud sends them with every upload (x-amz-tagging), which AWS authorizes as s3:PutObjectTagging too (MinIO does not ask for it)")
	}
	if len(kmsRW)+len(kmsRO) > 0 {
		actions := []string{"kms:Decrypt"}
		if len(kmsRW) > 0 {
			actions = []string{"kms:GenerateDataKey", "kms:Decrypt"}
		}
		var ctx []string
		for _, a := range objectARNs(loc.Bucket, append(append([]string{}, kmsRW...), kmsRO...)) {
			ctx = append(ctx, a)
		}
		sort.Strings(ctx)
		doc.Statement = append(doc.Statement, Statement{Sid: SidKMS, Effect: "Allow", Action: actions, Resource: []string{"arn:aws:kms:*:*:key/*"},
			Condition: map[string]map[string]any{"StringLike": {"kms:ViaService": "s3.*.amazonaws.com", "kms:EncryptionContext:aws:s3:arn": ctx}}})
		notes = append(notes, "wal/data encryption is aws:kms: S3 asks KMS for a data key on every upload (kms:GenerateDataKey) and to decrypt it on every read and multipart upload (kms:Decrypt), "+
			"only through S3 for these objects; with S3 Bucket Keys the encryption context is the bucket's ARN instead. "+SidKMS+" is for AWS only: remove it for MinIO, whose KMS is configured on the server")
	}
	body, _ := json.MarshalIndent(doc, "", "  ")
	file := r.Name + ".json"
	cmds := []string{fmt.Sprintf("cat > %s <<'EOF'\n%s\nEOF", providers.ShellQuote(file), body)}
	if role := roleName(r.Principal); role != "" {
		cmds = append(cmds, fmt.Sprintf("aws iam put-role-policy --role-name %s --policy-name %s --policy-document file://%s", providers.ShellQuote(role), r.Name, providers.ShellQuote(file)))
	} else {
		cmds = append(cmds, fmt.Sprintf("aws iam put-user-policy --user-name '<iam-user>' --policy-name %s --policy-document file://%s", r.Name, providers.ShellQuote(file)))
	}
	cmds = append(cmds,
		fmt.Sprintf("mc admin policy create '<alias>' %s %s   # MinIO: the same document", r.Name, providers.ShellQuote(file)),
		fmt.Sprintf("mc admin policy attach '<alias>' %s --user '<access-key-id>'", r.Name))
	return providers.Policy{Provider: "s3", Endpoint: loc.URL(), Bucket: loc.Bucket, Grants: providers.Grants(ts), Document: doc, Commands: cmds, Notes: notes}
}

// roleName is the role name of an IAM role ARN (arn:aws:iam::ACCOUNT:role/PATH/NAME), or "".
func roleName(arn string) string {
	i := strings.Index(arn, ":role/")
	if !strings.HasPrefix(arn, "arn:") || i < 0 {
		return ""
	}
	p := arn[i+len(":role/"):]
	return p[strings.LastIndex(p, "/")+1:]
}

func appendNew(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}
