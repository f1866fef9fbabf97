package azure

import (
	"strings"
	"testing"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/providertest"
)

func TestSASFindings(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	loc := providers.Location{Bucket: "backups", Prefix: "prod", ServerName: "pg"}
	const sig = "&sig=SECRETSIGa1b2c3d4e5f6%2B%2F%3D"
	for _, c := range []struct {
		name, tok string
		want      []string // substrings of the findings, in order ("fail: …" / "warn: …")
	}{
		{"container SAS with every letter, far expiry", "sv=2022-11-02&sr=c&sp=racwdl&se=2027-12-01T00:00:00Z" + sig, nil},
		{"expired", "sv=2022-11-02&sr=c&sp=rwdl&se=2026-11-30T00:00:00Z" + sig, []string{"fail: f: the SAS token expired on 2026-11-30T00:00:00Z"}},
		{"expires within 30 days", "sv=2022-11-02&sr=c&sp=rwdl&se=2026-12-20T12:00:00Z" + sig, []string{"warn: f: the SAS token expires on 2026-12-20T12:00:00Z (in 18 days)"}},
		{"expires within hours, minutes form", "sv=2022-11-02&sr=c&sp=rwdl&se=2026-12-02T14:00Z" + sig, []string{"warn: f: the SAS token expires on 2026-12-02T14:00:00Z (in 2h0m0s)"}},
		{"read and list only", "sv=2022-11-02&sr=c&sp=rl&se=2027-12-01T00:00:00Z" + sig, []string{"warn: f: the SAS token's permissions (sp=\"rl\") lack w (write) for uploads", "d (delete) for retention (barman-cloud-backup-delete)"}},
		{"create without write", "sv=2022-11-02&sr=c&sp=racdl&se=2027-12-01T00:00:00Z" + sig, []string{"lack w (write)", "c, create, only writes new blobs: barman-cloud ≥ 3.19 writes backup.info twice"}},
		{"no list", "sv=2022-11-02&sr=c&sp=racwd&se=2027-12-01T00:00:00Z" + sig, []string{"lack l (list) for the backup catalog"}},
		{"a single blob", "sv=2022-11-02&sr=b&sp=racwdl&se=2027-12-01T00:00:00Z" + sig, []string{"fail: f: the SAS token is for a single blob (sr=b)"}},
		{"a directory deeper than the destination", "sv=2022-11-02&sr=d&sdd=3&sp=racwdl&se=2027-12-01T00:00:00Z" + sig, []string{"fail: f: the SAS token is for a directory 3 level(s) deep (sr=d, sdd=3), below \"prod/pg/\" (2 level(s))"}},
		{"a directory above the destination", "sv=2022-11-02&sr=d&sdd=1&sp=racwdl&se=2027-12-01T00:00:00Z" + sig, nil},
		{"account SAS without objects", "sv=2022-11-02&ss=b&srt=sc&sp=racwdl&se=2027-12-01T00:00:00Z" + sig, []string{"fail: f: the account SAS token's resource types (srt=\"sc\") lack o"}},
		{"account SAS for queues", "sv=2022-11-02&ss=q&srt=co&sp=racwdl&se=2027-12-01T00:00:00Z" + sig, []string{"fail: f: the account SAS token does not cover the blob service (ss=\"q\")"}},
		{"starts later", "sv=2022-11-02&sr=c&sp=rwdl&st=2026-12-03T00:00:00Z&se=2027-12-01T00:00:00Z" + sig, []string{"warn: f: the SAS token is valid only from 2026-12-03T00:00:00Z"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(providertest.Findings(SASFindings(c.tok, "f", loc, now)), "\n")
			if strings.Contains(got, "SECRETSIG") {
				t.Fatalf("the signature leaks: %s", got)
			}
			if len(c.want) == 0 && got != "" {
				t.Errorf("findings:\n%s", got)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("findings:\n%s\nwant %q", got, w)
				}
			}
		})
	}
}
