package providers

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strings"
)

// HonouredEnv are the environment variables of the backup client's container that change what
// barman-cloud does and that cnpg-preflight applies (README "How barman-cloud is modelled"). A
// variable ending in "*" is a prefix. Only these are taken from the Pod's own environment when
// cnpg-preflight runs as the Job.
var HonouredEnv = []string{
	"AWS_*",   // botocore: region, endpoint, checksums, CA bundle, pod identity
	"AZURE_*", // azure-identity's DefaultAzureCredential, AZURE_STORAGE_*
	"GOOGLE_APPLICATION_CREDENTIALS",
	"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", // requests (Azure, GCS) and botocore's fallback
	"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
}

// Honoured reports whether the variable name is in HonouredEnv.
func Honoured(name string) bool {
	for _, h := range HonouredEnv {
		if p, ok := strings.CutSuffix(h, "*"); ok && strings.HasPrefix(name, p) || h == name {
			return true
		}
	}
	return false
}

// LoadEnv completes t.Env from the references it holds (valueFrom, envFrom), read through the
// target's lookups. Its findings are credentials problems naming the field path. It is called
// once, by the credentials check, before anything reads t.Env.
func (t *Target) LoadEnv(ctx context.Context) []Finding {
	if t.EnvResolve == nil {
		return nil
	}
	env, fs := t.EnvResolve(ctx)
	t.Env = env
	t.EnvResolve = nil
	return fs
}

// EnvNames lists the variables set in t.Env that the client honours, sorted (for messages:
// never their values).
func (t *Target) EnvNames() []string {
	var out []string
	for k := range t.Env {
		if Honoured(k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// ProxyRules is how the backup client's HTTP library picks a proxy from the environment.
type ProxyRules int

const (
	// ProxyRequests is requests' (Azure and GCS clients): HTTP(S)_PROXY by scheme, then ALL_PROXY;
	// NO_PROXY entries match as host suffixes (with or without a leading dot, also without a dot
	// boundary), host:port, IP addresses and CIDR blocks, or "*".
	ProxyRequests ProxyRules = iota
	// ProxyBotocore is botocore's (S3): HTTP(S)_PROXY by scheme only; NO_PROXY as urllib reads
	// it: "*", or names matched exactly or as dot-bounded suffixes (leading dots ignored), against
	// the host or host:port; no CIDR.
	ProxyBotocore
)

// proxyEnv reads the *_proxy variables the way urllib's getproxies_environment does: any case,
// lower case winning, an empty lower-case value removing the entry.
func proxyEnv(env map[string]string) map[string]string {
	out := map[string]string{}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys) // upper case sorts first: lower case wins below, as in urllib
	for _, k := range keys {
		if v := env[k]; v != "" && strings.HasSuffix(strings.ToLower(k), "_proxy") {
			out[strings.TrimSuffix(strings.ToLower(k), "_proxy")] = v
		}
	}
	for _, k := range keys {
		if strings.HasSuffix(k, "_proxy") && k == strings.ToLower(k) {
			if v := env[k]; v != "" {
				out[strings.TrimSuffix(k, "_proxy")] = v
			} else {
				delete(out, strings.TrimSuffix(k, "_proxy"))
			}
		}
	}
	return out
}

// ProxyFor returns the proxy the backup client uses for u with environment env (nil: none), or
// an error for a proxy URL it cannot use.
func (r ProxyRules) ProxyFor(env map[string]string, u *url.URL) (*url.URL, error) {
	px := proxyEnv(env)
	raw := px[u.Scheme]
	if raw == "" && r == ProxyRequests {
		raw = px["all"]
	}
	if raw == "" || r.bypass(px["no"], u) {
		return nil, nil
	}
	if !strings.Contains(raw, "://") { // both clients prefix a bare host:port with http://
		raw = "http://" + raw
	}
	p, err := url.Parse(raw)
	if err != nil || p.Host == "" {
		return nil, &Error{Op: "proxy", Kind: KindOther, Msg: "the proxy " + strings.ToUpper(u.Scheme) + "_PROXY is not a URL the backup client can use",
			Fix: "write the proxy as http://HOST:PORT"}
	}
	return p, nil
}

func (r ProxyRules) bypass(noProxy string, u *url.URL) bool {
	if strings.TrimSpace(noProxy) == "*" {
		return true
	}
	host := strings.ToLower(u.Hostname())
	netloc := strings.ToLower(u.Host)
	for _, name := range strings.Split(noProxy, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		// urllib (both clients consult it)
		n := strings.TrimLeft(name, ".")
		if host == n || netloc == n || strings.HasSuffix(host, "."+n) || strings.HasSuffix(netloc, "."+n) {
			return true
		}
		if r != ProxyRequests {
			continue
		}
		// requests' own rules
		if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
			if pfx, err := netip.ParsePrefix(name); err == nil && pfx.Contains(ip) {
				return true
			}
			if name == host {
				return true
			}
			continue
		}
		hp := host
		if u.Port() != "" {
			hp = net.JoinHostPort(host, u.Port())
		}
		if strings.HasSuffix(host, name) || strings.HasSuffix(hp, name) {
			return true
		}
	}
	return false
}

// Redacted is the proxy URL without its user information (for messages).
func Redacted(p *url.URL) string {
	if p == nil {
		return ""
	}
	c := *p
	c.User = nil
	c.Path, c.RawQuery, c.Fragment = "", "", ""
	return c.String()
}
