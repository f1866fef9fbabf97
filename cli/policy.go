package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"unicode"

	"github.com/spf13/pflag"
	yaml "go.yaml.in/yaml/v3"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
	"github.com/cnpg-preflight/cnpg-preflight/kube"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// PolicyOptions are the flags of the policy command.
type PolicyOptions struct {
	Files     []string
	Namespace string
	Kube      kube.Options
	Output    string // json, yaml or commands
	Target    string // only this target ID
}

// PolicyFormats are the outputs of the policy command.
var PolicyFormats = []string{"commands", "json", "yaml"}

// PolicySchemaVersion is the version of the policy command's JSON (and YAML) document.
const PolicySchemaVersion = 1

const policyHelp = `Usage: cnpg-preflight policy -f PATH [-f PATH ...] [--target ID] [-o commands|json|yaml]
       cnpg-preflight policy --cluster NAME [-n NS] | -n NS | -A [flags]

Prints the least privilege barman-cloud needs on each object store a Cluster uses — nothing more:
a backup target may archive WAL, upload base backups, list, restore and delete (retention) under
its <prefix>/<serverName>/ folder; a recovery or replica source may only list and read there.
Targets that share a bucket (container) and an identity get one policy, in which each folder keeps
its own access.

  S3      an IAM policy document (also a MinIO policy) and the aws / mc commands that apply it
  Azure   the SAS permissions (sp letters, container SAS, suggested expiry) and the data-plane role
          on the container, as az commands
  GCS     conditional role bindings on the bucket (object prefix and list prefix), as gcloud commands

Nothing is read from the object stores and no Secret is read.

Examples:
  cnpg-preflight policy -f cluster.yaml
  cnpg-preflight policy --cluster pg-main -n db --target db/pg-main/backup -o json
  cnpg-preflight policy -n db -o yaml

Exit codes: 0 every target has its policy, 1 some target has none (its reason is on stderr and in
"skipped"), 2 bad input or usage.

Flags:
`

func parsePolicy(args []string, stdout io.Writer) (*PolicyOptions, error) {
	o := &PolicyOptions{}
	fs := pflag.NewFlagSet("policy", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	inputFlags(fs, &o.Files, &o.Namespace, &o.Kube)
	fs.StringVarP(&o.Output, "output", "o", "commands", "output format: "+text.Join(PolicyFormats, "or"))
	fs.StringVar(&o.Target, "target", "", "only the target with this ID (NAMESPACE/CLUSTER/ROLE[/SOURCE], as check prints it)")
	if err := parseFlags(fs, args, policyHelp, stdout); err != nil {
		return nil, err
	}
	if err := checkInput(o.Files, &o.Namespace, &o.Kube); err != nil {
		return nil, err
	}
	valid := false
	for _, f := range PolicyFormats {
		valid = valid || f == o.Output
	}
	if !valid {
		return nil, &UsageError{Msg: fmt.Sprintf("unknown output format %q (want %s)", o.Output, text.Join(PolicyFormats, "or"))}
	}
	return o, nil
}

// PolicyDocument is the policy command's output.
type PolicyDocument struct {
	SchemaVersion int                `json:"schemaVersion"`
	Policies      []providers.Policy `json:"policies"`
	Skipped       []SkippedTarget    `json:"skipped,omitempty"`
}

// SkippedTarget is a target without a policy, and why.
type SkippedTarget struct {
	Target string `json:"target"`
	Reason string `json:"reason"`
	// Problem: the target needs access but no policy could be made (exit 1); otherwise it needs none.
	Problem bool `json:"problem"`
}

// RunPolicy reads the Clusters and prints the least-privilege policies of their targets.
func RunPolicy(ctx context.Context, f *Factory, o *PolicyOptions) error {
	in, err := load(ctx, f, o.Files, o.Namespace, o.Kube)
	if err != nil {
		return err
	}
	ts := targets.Build(in.set, targets.NoSecrets, f.Registry)
	if len(ts) == 0 {
		return &UsageError{Msg: fmt.Sprintf("no Cluster with an object-store configuration found in %s (read %s)", in.where, in.set.Summary())}
	}
	if o.Target != "" {
		var ids []string
		var one []*targets.Target
		for _, t := range ts {
			ids = append(ids, t.ID)
			if t.ID == o.Target {
				one = append(one, t)
			}
		}
		if len(one) == 0 {
			return &UsageError{Msg: fmt.Sprintf("no target %s (the targets are %s)", text.Safe(o.Target), text.Cap(text.Sanitize(strings.Join(ids, ", ")), 500))}
		}
		ts = one
	}
	doc := Policies(ts, f.Registry)
	if err := renderPolicies(f.IO.Out, doc, o.Output); err != nil {
		return fmt.Errorf("cannot write the policies: %w", err)
	}
	problems := 0
	for _, s := range doc.Skipped {
		if s.Problem {
			problems++
			fmt.Fprintf(f.IO.ErrOut, "cnpg-preflight: no policy for %s: %s\n", text.Sanitize(s.Target), text.Cap(text.Sanitize(s.Reason), MaxErrorLine))
		}
	}
	if problems > 0 {
		return ErrChecksFailed
	}
	return nil
}

var safeBucket = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Policies groups the targets by provider, endpoint, bucket and identity and asks each provider
// for the least privilege of each group.
func Policies(ts []*targets.Target, reg *providers.Registry) PolicyDocument {
	doc := PolicyDocument{SchemaVersion: PolicySchemaVersion, Policies: []providers.Policy{}}
	type group struct {
		policer   providers.Policer
		identity  string
		principal string
		ts        []providers.PolicyTarget
	}
	var order []string
	groups := map[string]*group{}
	skip := func(t *targets.Target, problem bool, format string, args ...any) {
		doc.Skipped = append(doc.Skipped, SkippedTarget{Target: t.ID, Reason: fmt.Sprintf(format, args...), Problem: problem})
	}
	for _, t := range ts {
		if why := t.ConfigOnly(); why != "" {
			skip(t, false, "%s", strings.TrimPrefix(why, "skipped: "))
			continue
		}
		if t.Role == targets.RoleSource {
			skip(t, false, "the Cluster does not use this external cluster (no recovery or replica source): barman-cloud never reads it")
			continue
		}
		if t.Conf == nil || t.Driver == nil {
			skip(t, true, "%s", firstFailure(t.Findings, "no object-store configuration barman-cloud could use"))
			continue
		}
		pol, ok := t.Driver.(providers.Policer)
		if !ok {
			skip(t, true, "the %s provider cannot state its permissions", t.Provider())
			continue
		}
		pt := t.ProviderTarget()
		loc, fs := t.Driver.Validate(pt)
		if loc.Bucket == "" {
			skip(t, true, "%s", firstFailure(fs, "no bucket in destinationPath"))
			continue
		}
		if !safeBucket.MatchString(loc.Bucket) || loc.Account != "" && !safeBucket.MatchString(loc.Account) {
			skip(t, true, "the %s name %s is not one a store accepts", t.Driver.Info().BucketNoun, text.Safe(loc.Bucket+" "+loc.Account))
			continue
		}
		if strings.IndexFunc(loc.Base(), func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			skip(t, true, "the folder %s holds control or invisible characters", text.Safe(loc.Base()))
			continue
		}
		access := providers.ReadOnly
		if t.Role == targets.RoleBackup {
			access = providers.ReadWrite
		}
		identity, principal := identityOf(t, reg)
		key := strings.Join([]string{t.Provider(), loc.URL(), loc.Account, loc.Bucket, identity}, "\x00")
		g := groups[key]
		if g == nil {
			g = &group{policer: pol, identity: identity, principal: principal}
			groups[key] = g
			order = append(order, key)
		}
		g.ts = append(g.ts, providers.PolicyTarget{ID: t.ID, Access: access, Loc: loc, Conf: t.Conf})
	}
	names := map[string]int{}
	for _, key := range order {
		g := groups[key]
		bucket := g.ts[0].Loc.Bucket
		k := g.ts[0].Loc.Provider + "/" + bucket
		names[k]++
		p := g.policer.Policy(providers.PolicyRequest{Targets: g.ts, Principal: g.principal, Name: providers.PolicyName(bucket, names[k])})
		p.Identity = g.identity
		doc.Policies = append(doc.Policies, p)
	}
	return doc
}

func firstFailure(fs []providers.Finding, def string) string {
	for _, f := range fs {
		if f.Severity == providers.Fail {
			return f.String()
		}
	}
	return def
}

// identityOf names the identity a target's backup client uses: the Cluster's ServiceAccount for
// a pod identity (principal: its workload-identity annotation), else the Secrets its credentials
// block references (never their values).
func identityOf(t *targets.Target, reg *providers.Registry) (identity, principal string) {
	cr := t.Driver.Credentials(t.Conf)
	ns := t.Cluster.Meta.Namespace
	if cr.PodIdentity != "" {
		info := t.Driver.Info()
		if sa := t.Cluster.Spec.ServiceAccountTemplate; sa != nil {
			principal = sa.Metadata.Annotations[info.IdentityAnnotation]
		}
		identity = fmt.Sprintf("ServiceAccount %s/%s (%s)", ns, t.Cluster.Meta.Name, cr.PodIdentity)
		if principal != "" {
			identity += ": " + principal
		}
		return text.Sanitize(identity), principal
	}
	seen := map[string]bool{}
	var names []string
	for _, ref := range cr.Refs {
		if ref.Name != "" && !seen[ref.Name] {
			seen[ref.Name] = true
			names = append(names, ns+"/"+ref.Name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "no credentials configured", ""
	}
	return text.Sanitize("Secret " + strings.Join(names, ", Secret ")), ""
}

func renderPolicies(w io.Writer, doc PolicyDocument, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false) // the commands keep their < and >
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	case "yaml":
		b, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		var n yaml.Node // JSON is YAML: the node keeps the fields' order
		if err := yaml.Unmarshal(b, &n); err != nil {
			return err
		}
		blockStyle(&n)
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(&n); err != nil {
			return err
		}
		return enc.Close()
	}
	return renderCommands(w, doc)
}

// blockStyle turns a node decoded from JSON into block style with quotes only where needed.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

func renderCommands(w io.Writer, doc PolicyDocument) error {
	var b strings.Builder
	b.WriteString("# cnpg-preflight policy: the least privilege barman-cloud needs, per bucket and identity\n")
	for _, p := range doc.Policies {
		where := p.Bucket
		if p.Account != "" {
			where = p.Account + "/" + p.Bucket
		}
		fmt.Fprintf(&b, "\n# %s %s", p.Provider, where)
		if p.Endpoint != "" {
			fmt.Fprintf(&b, " at %s", text.Sanitize(p.Endpoint))
		}
		fmt.Fprintf(&b, ", identity: %s\n", p.Identity)
		for _, g := range p.Grants {
			fmt.Fprintf(&b, "#   %-10s %s  %s\n", g.Access, g.Folder, text.Sanitize(g.Target))
		}
		if p.SAS != nil {
			fmt.Fprintf(&b, "# SAS: sp=%s on the container (sr=%s; account SAS: srt=%s), expiry in %s\n", p.SAS.Permissions, p.SAS.SignedResource, p.SAS.ResourceTypes, p.SAS.Expiry)
		}
		for _, n := range p.Notes {
			fmt.Fprintf(&b, "# note: %s\n", n)
		}
		for _, c := range p.Commands {
			b.WriteString(c + "\n")
		}
	}
	for _, s := range doc.Skipped {
		fmt.Fprintf(&b, "\n# no policy for %s: %s\n", text.Sanitize(s.Target), text.Sanitize(s.Reason))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
