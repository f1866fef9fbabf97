package checks

import (
	"context"
	"fmt"
	"strings"

	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

var (
	walCompressions  = map[string]bool{"bzip2": true, "gzip": true, "lz4": true, "snappy": true, "xz": true, "zstd": true}
	dataCompressions = map[string]bool{"bzip2": true, "gzip": true, "lz4": true, "snappy": true}
)

// runConfig applies CNPG's admission rules and the shape rules of destinationPath and endpointURL.
func runConfig(_ context.Context, r *Run) Result {
	t := r.T
	fs := append([]providers.Finding(nil), t.Findings...)
	c := t.Conf
	if c == nil {
		return fromFindings(fs, "")
	}
	f := func(sub string) string { return t.Field + "." + sub }
	creds := 0
	for _, set := range []bool{c.S3Credentials != nil, c.AzureCredentials != nil, c.GoogleCredentials != nil} {
		if set {
			creds++
		}
	}
	prov := providers.ProviderOf(c.DestinationPath)
	switch {
	case c.DestinationPath == "":
		fs = append(fs, providers.Failf(f("destinationPath"), "set destinationPath, e.g. s3://BUCKET/PATH", "destinationPath is required"))
	case prov == "":
		fs = append(fs, providers.Failf(f("destinationPath"), "use s3://BUCKET/PATH, gs://BUCKET/PATH or https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH",
			"%q: unknown scheme; barman-cloud understands s3://, gs:// and http(s):// (Azure)", c.DestinationPath))
	}
	switch {
	case creds == 0:
		fs = append(fs, providers.Failf(t.Field, "add exactly one of s3Credentials, azureCredentials, googleCredentials",
			"no credentials: CNPG requires exactly one of s3Credentials, azureCredentials, googleCredentials"))
	case creds > 1:
		fs = append(fs, providers.Failf(t.Field, "keep only the credentials block that matches destinationPath",
			"more than one credentials block: CNPG requires exactly one of s3Credentials, azureCredentials, googleCredentials"))
	case prov == "s3" && c.S3Credentials == nil, prov == "azure" && c.AzureCredentials == nil, prov == "gcs" && c.GoogleCredentials == nil:
		want := map[string]string{"s3": "s3Credentials", "azure": "azureCredentials", "gcs": "googleCredentials"}[prov]
		fs = append(fs, providers.Failf(t.Field, "use "+want+" for this destination", "destinationPath %q needs %s", c.DestinationPath, want))
	}
	if w := c.Wal; w != nil {
		if w.Compression != "" && !walCompressions[w.Compression] {
			fs = append(fs, providers.Failf(f("wal.compression"), "use one of bzip2, gzip, lz4, snappy, xz, zstd", "unknown compression %q", w.Compression))
		}
		if w.MaxParallel < 0 {
			fs = append(fs, providers.Failf(f("wal.maxParallel"), "use a positive number", "maxParallel must be positive"))
		}
	}
	if d := c.Data; d != nil {
		if d.Compression != "" && !dataCompressions[d.Compression] {
			fs = append(fs, providers.Failf(f("data.compression"), "use one of bzip2, gzip, lz4, snappy", "unknown compression %q", d.Compression))
		}
		if d.Jobs != nil && *d.Jobs < 1 {
			fs = append(fs, providers.Failf(f("data.jobs"), "use 1 or more", "jobs must be at least 1"))
		}
	}
	if prov != "" && r.Driver == nil {
		fs = append(fs, providers.Failf(f("destinationPath"), "", "the %s provider is not supported by this version of cnpg-preflight", prov))
	}
	if r.Driver != nil && creds == 1 && c.DestinationPath != "" {
		fs = append(fs, r.valFs...)
	}
	fs = append(fs, r.crossFs...)
	where := ""
	if r.Loc.Bucket != "" {
		kind := "bucket"
		if prov == "azure" {
			kind = "container"
		}
		where = fmt.Sprintf("objects go to %s %q under %q", kind, r.Loc.Bucket, r.Loc.Base())
	}
	return fromFindings(fs, where)
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
