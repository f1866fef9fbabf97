package testenv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/all"
	"github.com/cnpg-preflight/cnpg-preflight/report"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// SecretValues returns every secret a manifest's object-store configurations reference: S3 secret
// keys and session tokens, Azure account keys, SAS tokens and their signatures, the keys inside
// connection strings, and service-account private keys — and the base64 of each.
func SecretValues(doc string) []string {
	set := manifest.NewSet()
	if set.Add("sweep.yaml", []byte(doc), "default") != nil {
		return nil
	}
	ts := targets.Build(set, func(ns string) providers.SecretLookup { return targets.SecretsFromSet(set, ns) }, all.Registry(all.Settings{}))
	var out []string
	add := func(v string) {
		v = strings.TrimSpace(v)
		if len(v) >= 6 {
			out = append(out, v, base64.StdEncoding.EncodeToString([]byte(v)))
		}
	}
	for _, t := range ts {
		c := t.Conf
		if c == nil {
			continue
		}
		get := func(ref *manifest.SecretKeySelector) string {
			if ref == nil {
				return ""
			}
			v, _ := t.Lookup(context.Background(), ref.Name, ref.Key)
			return string(v)
		}
		if s := c.S3Credentials; s != nil {
			add(get(s.SecretAccessKey))
			add(get(s.SessionToken))
		}
		if a := c.AzureCredentials; a != nil {
			add(get(a.StorageKey))
			sas := strings.TrimPrefix(get(a.StorageSasToken), "?")
			add(sas)
			if q, err := url.ParseQuery(sas); err == nil {
				add(q.Get("sig"))
			}
			for _, part := range strings.Split(get(a.ConnectionString), ";") {
				k, v, _ := strings.Cut(part, "=")
				switch strings.ToLower(k) {
				case "accountkey":
					add(v)
				case "sharedaccesssignature":
					add(v)
					if q, err := url.ParseQuery(v); err == nil {
						add(q.Get("sig"))
					}
				}
			}
		}
		if g := c.GoogleCredentials; g != nil {
			var sa struct {
				PrivateKey string `json:"private_key"`
			}
			if json.Unmarshal([]byte(get(g.ApplicationCredentials)), &sa) == nil && sa.PrivateKey != "" {
				for _, l := range strings.Split(sa.PrivateKey, "\n") {
					if !strings.HasPrefix(l, "-----") {
						add(l) // every base64 line of the key
					}
				}
			}
		}
	}
	// Secrets of the backup clients' environments: values of variables named like a secret, and
	// passwords inside proxy URLs.
	secretName := func(n string) bool {
		n = strings.ToUpper(n)
		return !strings.HasSuffix(n, "KEY_ID") && (strings.Contains(n, "SECRET") || strings.Contains(n, "TOKEN") || strings.Contains(n, "PASSWORD") || strings.HasSuffix(n, "_KEY"))
	}
	addEnv := func(ns, name string, v []byte) {
		if secretName(name) {
			add(string(v))
		}
		if u, err := url.Parse(strings.TrimSpace(string(v))); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok {
				add(pw)
			}
		}
	}
	envs := func(ns string, env []manifest.EnvVar) {
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				if sec := set.Secret(ns, e.ValueFrom.SecretKeyRef.Name); sec != nil {
					addEnv(ns, e.Name, sec.Data[e.ValueFrom.SecretKeyRef.Key])
				}
			}
		}
	}
	for _, c := range set.Clusters {
		envs(c.Meta.Namespace, c.Spec.Env)
		for _, ef := range c.Spec.EnvFrom {
			if ef.SecretRef != nil {
				if sec := set.Secret(c.Meta.Namespace, ef.SecretRef.Name); sec != nil {
					for k, v := range sec.Data {
						addEnv(c.Meta.Namespace, ef.Prefix+k, v)
					}
				}
			}
		}
	}
	for _, o := range set.ObjectStores {
		if o.Spec.InstanceSidecarConfiguration != nil {
			envs(o.Meta.Namespace, o.Spec.InstanceSidecarConfiguration.Env)
		}
	}
	return out
}

// Sweep fails the test when a secret of doc appears in the run's output or in any output format
// rendered from its matrix.
func Sweep(t testing.TB, doc string, r Result) {
	t.Helper()
	texts := []string{r.Stdout, r.Stderr}
	if r.Matrix != nil {
		for _, f := range report.Formats {
			var b bytes.Buffer
			report.Render(&b, r.Matrix, f, report.Options{Color: true})
			texts = append(texts, b.String())
		}
	}
	for _, s := range SecretValues(doc) {
		for i, text := range texts {
			if strings.Contains(text, s) {
				t.Errorf("a secret value leaks into output %d (stdout, stderr, %s)", i, strings.Join(report.Formats, ", "))
				return
			}
		}
	}
}
