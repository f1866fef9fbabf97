package providertest

import (
	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// Ref is a Secret reference for the providers' Validate tests.
func Ref(name, key string) *manifest.SecretKeySelector {
	return &manifest.SecretKeySelector{Name: name, Key: key}
}

// Findings renders findings as "fail: field: msg" or "warn: field: msg", in order, for the
// providers' Validate tests.
func Findings(fs []providers.Finding) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		sev := "fail: "
		if f.Severity == providers.Warn {
			sev = "warn: "
		}
		out = append(out, sev+f.String())
	}
	return out
}
