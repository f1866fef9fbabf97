package checks

import (
	"context"
	"fmt"
	"strings"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

var (
	walCompressions  = map[string]bool{"bzip2": true, "gzip": true, "lz4": true, "snappy": true, "xz": true, "zstd": true}
	dataCompressions = map[string]bool{"bzip2": true, "gzip": true, "lz4": true, "snappy": true}
)

// runConfig applies CNPG's admission rules and the shape rules of destinationPath and endpointURL.
func runConfig(_ context.Context, r *Run) Result {
	t := r.t
	fs := append([]providers.Finding(nil), t.Findings...)
	c := t.Conf
	if c == nil {
		return fromFindings(fs, "")
	}
	f := func(sub string) string { return t.Field + "." + sub }
	reg := r.opts.Registry
	set := reg.SetCredentials(c)
	switch {
	case c.DestinationPath == "":
		fs = append(fs, providers.Failf(f("destinationPath"), "set destinationPath, e.g. "+reg.DestinationForms(), "destinationPath is required: the API server rejects this (CRD: required, minLength 1)"))
	case r.drv == nil:
		fs = append(fs, providers.Failf(f("destinationPath"), "use "+reg.DestinationForms(),
			"%q: unknown scheme; barman-cloud understands %s", c.DestinationPath, reg.Schemes()))
	}
	// One credentials block: CNPG's webhook checks it for spec.backup.barmanObjectStore only; at
	// run time CNPG stops without any, and with several it takes one block for the environment
	// and possibly another for --cloud-provider.
	switch {
	case len(set) == 0 && t.Admission:
		fs = append(fs, providers.Failf(t.Field, "add exactly one of "+reg.CredentialsFields(),
			"no credentials: CNPG rejects this (missing credentials. One and only one of azureCredentials, s3Credentials and googleCredentials are required)"))
	case len(set) == 0:
		fs = append(fs, providers.Failf(t.Field, "add exactly one of "+reg.CredentialsFields(),
			`no credentials: at run time CNPG stops with "ObjectStoreConfiguration invalid: no credentials defined"`))
	case len(set) > 1 && t.Admission:
		fs = append(fs, providers.Failf(t.Field, "keep only the credentials block that matches destinationPath",
			"more than one credentials block: CNPG rejects this (too many credentials. One and only one of azureCredentials, s3Credentials and googleCredentials are required)"))
	case len(set) > 1:
		fs = append(fs, providers.Failf(t.Field, "keep only the credentials block that matches destinationPath",
			"more than one credentials block: at run time CNPG builds the backup client's environment from one and may pick --cloud-provider from another (nothing validates this block: CNPG's webhook only checks spec.backup.barmanObjectStore)"))
	case r.drv != nil && set[0] != r.drv:
		want := r.drv.Info().CredentialsField
		fs = append(fs, providers.Failf(t.Field, "use "+want+" for this destination", "destinationPath %q needs %s", c.DestinationPath, want))
	}
	// The CRD's enums and minimums hold wherever the block is embedded (Cluster or ObjectStore),
	// whatever the provider.
	const rejected = "the API server rejects this (CRD: %s)"
	if w := c.Wal; w != nil {
		if w.Compression != "" && !walCompressions[w.Compression] {
			fs = append(fs, providers.Failf(f("wal.compression"), "use one of bzip2, gzip, lz4, snappy, xz, zstd", "unknown compression %q: "+rejected, w.Compression, "enum bzip2, gzip, lz4, snappy, xz, zstd"))
		}
		if w.MaxParallel != nil && *w.MaxParallel < 1 {
			fs = append(fs, providers.Failf(f("wal.maxParallel"), "use 1 or more, or leave it out", "maxParallel %d: "+rejected, *w.MaxParallel, "minimum 1"))
		}
		if w.Encryption != "" && !providers.ValidEncryption(w.Encryption) {
			fs = append(fs, providers.Failf(f("wal.encryption"), "use AES256 or aws:kms", "encryption %q: "+rejected, w.Encryption, "enum "+strings.Join(providers.Encryptions, ", ")))
		}
	}
	if d := c.Data; d != nil {
		if d.Compression != "" && !dataCompressions[d.Compression] {
			fs = append(fs, providers.Failf(f("data.compression"), "use one of bzip2, gzip, lz4, snappy", "unknown compression %q: "+rejected, d.Compression, "enum bzip2, gzip, lz4, snappy"))
		}
		if d.Jobs != nil && *d.Jobs < 1 {
			fs = append(fs, providers.Failf(f("data.jobs"), "use 1 or more", "jobs %d: "+rejected, *d.Jobs, "minimum 1"))
		}
		if d.Encryption != "" && !providers.ValidEncryption(d.Encryption) {
			fs = append(fs, providers.Failf(f("data.encryption"), "use AES256 or aws:kms", "encryption %q: "+rejected, d.Encryption, "enum "+strings.Join(providers.Encryptions, ", ")))
		}
	}
	if r.drv != nil && len(set) == 1 && c.DestinationPath != "" {
		fs = append(fs, r.valFs...)
		if r.loc.Bucket != "" {
			fs = append(fs, layoutFindings(t.Field, r.loc)...)
		}
	}
	fs = append(fs, r.crossFs...)
	where := ""
	if r.loc.Bucket != "" {
		where = fmt.Sprintf("objects go to %s %q under %q", r.drv.Info().BucketNoun, r.loc.Bucket, r.loc.Base())
	}
	if len(t.Notes) > 0 { // what the live Cluster and ObjectStore report (status)
		where = strings.TrimPrefix(where+"; "+strings.Join(t.Notes, "; "), "; ")
	}
	return fromFindings(fs, where)
}

// maxKeyLen is the longest object key S3, GCS and Azure accept (bytes / characters).
const maxKeyLen = 1024

// longestKeySuffix is the longest key barman-cloud writes under <prefix>/<serverName>/:
// wals/<16 hex>/<24 hex>.<8 hex>.backup plus a compression suffix.
const longestKeySuffix = len("wals/0000000100000000/000000010000000000000001.00000028.backup.snappy")

// layoutFindings refuses destinations whose <prefix>/<serverName>/ cannot hold barman's layout:
// inside another server's base/ or wals/ (its catalog would see our folder as a broken backup or
// a foreign WAL), with path segments stores refuse or HTTP clients rewrite, or too long for a key.
func layoutFindings(field string, loc providers.Location) []providers.Finding {
	var fs []providers.Finding
	base := loc.Base()
	segs := strings.Split(strings.TrimSuffix(base, "/"), "/")
	sf := field + ".serverName"
	for i, seg := range segs {
		switch {
		case seg == "." || seg == "..":
			fs = append(fs, providers.Failf(sf, "use a serverName (and destinationPath) made of plain folder names",
				"the objects would go under %q: a %q path segment is refused by stores such as MinIO and rewritten by HTTP clients, so WALs would not land where a restore looks", base, seg))
		case (seg == "base" || seg == "wals") && i > 0:
			fs = append(fs, providers.Failf(field+".destinationPath", "give the Cluster its own folder: a destinationPath and serverName outside any server's base/ and wals/",
				"the objects would go under %q, inside the %s/ folder of server %q: barman-cloud would write this Cluster's WALs and backups into that server's catalog (cnpg-preflight writes nothing there)", base, seg, segs[i-1]))
		}
	}
	if strings.Contains("/"+loc.ServerName+"/", "//") { // the destinationPath's own slashes are the provider's to judge
		fs = append(fs, providers.Warnf(sf, "remove the empty path segment (a leading, trailing or double slash)",
			"the objects would go under %q, which has an empty path segment: some stores refuse such keys, and most tools show it as a nameless folder", base))
	}
	if n := len(base) + longestKeySuffix; n > maxKeyLen {
		fs = append(fs, providers.Failf(sf, "shorten destinationPath's path or serverName",
			"keys under %q would be up to %d bytes long; object stores accept %d", text.Cap(base, 80), n, maxKeyLen))
	}
	return fs
}

// fromFindings turns findings into a check result: fail if any fails, warn if any warns.
func fromFindings(fs []providers.Finding, passMsg string) Result {
	var fails, warns, fixes []string
	seen := map[string]bool{}
	for _, f := range fs {
		if f.Severity == providers.Fail {
			fails = append(fails, f.String())
		} else {
			warns = append(warns, f.String())
		}
	}
	for _, sev := range []providers.Severity{providers.Fail, providers.Warn} {
		for _, f := range fs {
			if f.Severity == sev && f.Fix != "" && !seen[f.Fix] {
				seen[f.Fix] = true
				fixes = append(fixes, f.Fix)
			}
		}
	}
	soft := true
	for _, f := range fs {
		soft = soft && (f.Severity != providers.Fail || f.Soft)
	}
	switch {
	case len(fails) > 0:
		return Result{Status: report.Fail, Message: strings.Join(append(fails, warns...), "; "), Remediation: strings.Join(fixes, "; "), Proceed: soft}
	case len(warns) > 0:
		msg := strings.Join(warns, "; ")
		if passMsg != "" {
			msg = passMsg + "; " + msg
		}
		return Result{Status: report.Warn, Message: msg, Remediation: strings.Join(fixes, "; ")}
	}
	if passMsg == "" {
		passMsg = "configuration is valid"
	}
	return Result{Status: report.Pass, Message: passMsg}
}

func hasFail(fs []providers.Finding) bool {
	for _, f := range fs {
		if f.Severity == providers.Fail {
			return true
		}
	}
	return false
}
