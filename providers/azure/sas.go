package azure

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// ExpiryWarning is how close a credential's expiry may come before it is named.
const ExpiryWarning = 30 * 24 * time.Hour

// sasLetters are the SAS permissions barman-cloud needs, each with what needs it. Add (a) is
// Append Block only and create (c) only writes new blobs: write (w) covers both for block blobs.
var sasLetters = []struct{ letter, name, use string }{
	{"r", "read", "restores, WAL fetches and backup.info reads"},
	{"w", "write", "uploads (Put Blob, Put Block, Put Block List) and overwriting backup.info"},
	{"d", "delete", "retention (barman-cloud-backup-delete)"},
	{"l", "list", "the backup catalog and the WAL-archive check (List Blobs)"},
}

// connSAS returns the SharedAccessSignature of a connection string ("" when none).
func connSAS(cs string) string {
	for _, part := range strings.Split(cs, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && strings.EqualFold(k, "SharedAccessSignature") {
			return strings.TrimPrefix(v, "?")
		}
	}
	return ""
}

// SASFindings judges a SAS token's lifetime and scope against what barman-cloud does with the
// destination loc: an expiry (se) in the past fails, one within 30 days warns with the date;
// permissions (sp) barman uses that are missing are named with the operation that needs them (a
// warning: the probes show which operations fail); a scope narrower than the destination (a
// single blob, a directory deeper than <prefix>/<serverName>/, an account SAS without blob
// objects or containers) fails. Nothing of the token but these parameters is ever printed.
func SASFindings(tok, field string, loc providers.Location, now time.Time) []providers.Finding {
	q, err := url.ParseQuery(strings.TrimPrefix(strings.TrimSpace(tok), "?"))
	if err != nil {
		return []providers.Finding{providers.Failf(field, "use the SAS token as the portal or az CLI prints it (the query string, without a leading ?)", "the SAS token is not a query string")}
	}
	var fs []providers.Finding
	const renew = "issue a new SAS token with a later expiry (se) and update the Secret before it expires; or use a credential that does not expire (workload identity, inheritFromAzureAD)"
	if se := q.Get("se"); se != "" {
		exp, ok := sasTime(se)
		switch {
		case !ok:
			fs = append(fs, providers.Warnf(field, renew, "the SAS expiry (se=%q) is not a date Azure accepts", se))
		case !exp.After(now):
			fs = append(fs, providers.Failf(field, renew, "the SAS token expired on %s: Azure refuses every request made with it (AuthenticationFailed)", exp.UTC().Format(time.RFC3339)))
		case exp.Sub(now) < ExpiryWarning:
			fs = append(fs, providers.Warnf(field, renew, "the SAS token expires on %s (in %s): from then on WAL archiving and backups fail", exp.UTC().Format(time.RFC3339), days(exp.Sub(now))))
		}
	} else if q.Get("si") == "" {
		fs = append(fs, providers.Warnf(field, "", "the SAS token has no expiry (se) nor stored access policy (si): Azure refuses it"))
	}
	if st := q.Get("st"); st != "" {
		if start, ok := sasTime(st); ok && start.After(now) {
			fs = append(fs, providers.Warnf(field, "issue the SAS with a start time (st) in the past, or none", "the SAS token is valid only from %s", start.UTC().Format(time.RFC3339)))
		}
	}
	if sp := q.Get("sp"); sp != "" || q.Get("si") == "" {
		var missing []string
		for _, l := range sasLetters {
			if !strings.Contains(sp, l.letter) {
				m := fmt.Sprintf("%s (%s) for %s", l.letter, l.name, l.use)
				if l.letter == "w" && strings.Contains(sp, "c") {
					m += " (c, create, only writes new blobs: barman-cloud ≥ 3.19 writes backup.info twice, and the second write is refused)"
				}
				missing = append(missing, m)
			}
		}
		if len(missing) > 0 {
			fs = append(fs, providers.Warnf(field, "issue the SAS with at least the permissions rwdl (read, write, delete, list; racwdl is what the portal offers for a container)",
				"the SAS token's permissions (sp=%q) lack %s", sp, strings.Join(missing, "; ")))
		}
	}
	const scopeFix = "issue a container SAS (sr=c) for container %q, or an account SAS with ss including b and srt=co"
	switch sr := q.Get("sr"); sr {
	case "b", "bs", "bv":
		fs = append(fs, providers.Failf(field, fmt.Sprintf(scopeFix, loc.Bucket), "the SAS token is for a single blob (sr=%s): barman-cloud writes and lists many blobs under %q", sr, loc.Base()))
	case "d":
		depth := len(strings.Split(strings.Trim(loc.Base(), "/"), "/"))
		if sdd, err := strconv.Atoi(q.Get("sdd")); err == nil && sdd > depth {
			fs = append(fs, providers.Failf(field, fmt.Sprintf(scopeFix, loc.Bucket),
				"the SAS token is for a directory %d level(s) deep (sr=d, sdd=%d), below %q (%d level(s)) where barman-cloud writes: requests outside it are refused", sdd, sdd, loc.Base(), depth))
		}
	case "":
		if ss := q.Get("ss"); ss != "" && !strings.Contains(ss, "b") {
			fs = append(fs, providers.Failf(field, fmt.Sprintf(scopeFix, loc.Bucket), "the account SAS token does not cover the blob service (ss=%q)", ss))
		}
		if srt := q.Get("srt"); srt != "" && (!strings.Contains(srt, "o") || !strings.Contains(srt, "c")) {
			fs = append(fs, providers.Failf(field, fmt.Sprintf(scopeFix, loc.Bucket), "the account SAS token's resource types (srt=%q) lack %s: barman-cloud lists the container (c) and reads and writes blobs (o)", srt, missingOf(srt, "co")))
		}
	}
	return fs
}

func missingOf(have, want string) string {
	var out []string
	for _, c := range want {
		if !strings.ContainsRune(have, c) {
			out = append(out, string(c))
		}
	}
	return strings.Join(out, ", ")
}

// sasTime parses a SAS time (ISO 8601 UTC, with or without seconds, or a date).
func sasTime(v string) (time.Time, bool) {
	for _, f := range []string{time.RFC3339, "2006-01-02T15:04Z", "2006-01-02"} {
		if t, err := time.Parse(f, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func days(d time.Duration) string {
	if d < 24*time.Hour {
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
