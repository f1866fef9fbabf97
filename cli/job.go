package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/spf13/pflag"

	"github.com/cnpg-preflight/cnpg-preflight/kube"
	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// JobOptions are the flags of the job command.
type JobOptions struct {
	Files          []string
	Namespace      string
	Kube           kube.Options
	Image          string
	ServiceAccount string
	Schedule       string        // a CronJob instead of a Job
	Timeout        time.Duration // the check's --timeout; the Job's deadlines derive from it
	Events         bool          // --events: the check records Events on the Cluster, and the Role allows it
	Serve          ServeJobOptions
}

const jobHelp = `Usage: cnpg-preflight job --cluster NAME -n NS [--image IMG] [--service-account SA] [--schedule CRON] [--events]
       cnpg-preflight job --cluster NAME -f cluster.yaml [...]
       cnpg-preflight job --serve -n NS [--cluster NAME] [--interval 15m] [--listen :8080] [--service-monitor]

Prints the manifests that run "cnpg-preflight check --cluster NAME" inside Kubernetes with the least
privilege: a Role granting only get on that Cluster, on the ObjectStores it uses and on the Secrets it
references (by resourceNames), a RoleBinding, and a Job (or a CronJob with --schedule). By default the
Job runs as the Cluster's own ServiceAccount (CNPG names it after the Cluster and puts the
serviceAccountTemplate annotations on it), so the identity tested is the database's: IRSA, Azure and
GKE workload identity are exercised for real.

Examples:
  cnpg-preflight job --cluster pg-main -n db | kubectl apply -f -
  kubectl -n db wait --for=condition=complete job/cnpg-preflight-pg-main --timeout=120s
  kubectl -n db get pod -l job-name=cnpg-preflight-pg-main -o jsonpath='{..terminated.message}'

  # re-validate every night at 03:00, with an Event on the Cluster when the verdict changes
  cnpg-preflight job --cluster pg-main -n db --schedule "0 3 * * *" --events | kubectl apply -f -

  # keep checking every Cluster of the namespace: serve as a Deployment, with metrics and Events
  cnpg-preflight job --serve -n db --service-monitor | kubectl apply -f -

Flags:
`

func parseJob(args []string, stdout io.Writer) (*JobOptions, error) {
	o := &JobOptions{}
	fs := pflag.NewFlagSet("job", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.Kube.Cluster, "cluster", "", "the Cluster to check (required, except with --serve: then every Cluster of the namespace)")
	fs.StringVarP(&o.Namespace, "namespace", "n", "", "the Cluster's namespace (default: the context's, or \"default\" with -f)")
	fs.StringArrayVarP(&o.Files, "filename", "f", nil, "read the Cluster (and its ObjectStores) from manifests instead of the live cluster")
	fs.StringVar(&o.Kube.Kubeconfig, "kubeconfig", "", "kubeconfig file")
	fs.StringVar(&o.Kube.Context, "context", "", "kubeconfig context")
	fs.StringVar(&o.Image, "image", "cnpg-preflight:"+version(), "container image of cnpg-preflight (see deploy/Dockerfile)")
	fs.StringVar(&o.ServiceAccount, "service-account", "", "run as this ServiceAccount (printed with the Cluster's serviceAccountTemplate annotations) instead of the Cluster's own")
	fs.StringVar(&o.Schedule, "schedule", "", "print a CronJob with this schedule instead of a Job")
	fs.DurationVar(&o.Timeout, "timeout", 60*time.Second, "the check's time limit per target; the Job's activeDeadlineSeconds (and the CronJob's startingDeadlineSeconds) derive from it")
	fs.BoolVar(&o.Events, "events", false, "the check records a Kubernetes Event on the Cluster when its verdict changes (and the Role allows it)")
	serveJobFlags(fs, &o.Serve)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			io.WriteString(stdout, jobHelp+fs.FlagUsages())
			return nil, err
		}
		return nil, &UsageError{Msg: err.Error()}
	}
	if err := checkServeJob(fs, o); err != nil {
		return nil, err
	}
	if o.Kube.Cluster == "" && !o.Serve.Enabled {
		return nil, &UsageError{Msg: "job needs --cluster NAME"}
	}
	if o.Timeout < time.Second {
		return nil, &UsageError{Msg: "--timeout must be at least 1s"}
	}
	if fs.NArg() > 0 {
		return nil, &UsageError{Msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	o.Kube.Namespace = o.Namespace
	return o, nil
}

// RunJob prints the manifests for one Cluster.
func RunJob(ctx context.Context, f *Factory, o *JobOptions) error {
	if o.Serve.Enabled {
		return runServeJob(ctx, f, o)
	}
	ns := o.Namespace
	if len(o.Files) > 0 && ns == "" {
		ns = "default"
	}
	in, err := load(ctx, f, o.Files, ns, o.Kube)
	if err != nil {
		return err
	}
	set, ns := in.set, in.namespace
	var cl *manifest.Cluster
	for _, c := range set.Clusters {
		if c.Meta.Name == o.Kube.Cluster && c.Meta.Namespace == ns {
			cl = c
		}
	}
	if cl == nil {
		return &UsageError{Msg: fmt.Sprintf("Cluster %s/%s not found", ns, o.Kube.Cluster)}
	}
	m := JobManifests(cl, set, f.Registry, JobSpec{Image: o.Image, ServiceAccount: o.ServiceAccount, Schedule: o.Schedule, Timeout: o.Timeout, Events: o.Events})
	if o.Events {
		m = withEvents(m, cl, o.ServiceAccount)
	}
	_, err = io.WriteString(f.IO.Out, m)
	return err
}

// RBACNames are the names the Role grants get on.
type RBACNames struct {
	Cluster      string
	ObjectStores []string
	Secrets      []string
	ConfigMaps   []string // referenced by the backup clients' environments (spec.env, envFrom, the sidecar's env)
	Backups      []string // spec.bootstrap.recovery.backup.name
}

// NamesFor collects the ObjectStores and Secrets a Cluster's targets reference.
func NamesFor(cl *manifest.Cluster, set *manifest.Set, reg *providers.Registry) RBACNames {
	secrets := map[string]bool{}
	one := *set
	one.Clusters = []*manifest.Cluster{cl}
	ts := targets.Build(&one, targets.NoSecrets, reg)
	for _, t := range ts {
		if t.Conf == nil || t.ConfigOnly() != "" { // never probed: its Secrets are not read
			continue
		}
		for _, ref := range reg.SecretRefs(t.Conf) {
			secrets[ref.Name] = true
		}
	}
	envSecrets, configMaps := targets.EnvRefs(set, cl, ts)
	for _, s := range envSecrets {
		secrets[s] = true
	}
	var backups []string
	if b := cl.Spec.Bootstrap; b != nil && b.Recovery != nil && b.Recovery.Backup != nil && b.Recovery.Backup.Name != "" {
		if existing, _ := targets.Existing(cl); !existing {
			backups = []string{b.Recovery.Backup.Name}
		}
	}
	return RBACNames{Cluster: cl.Meta.Name, ObjectStores: cl.ObjectStoreNames(), Secrets: sorted(secrets), ConfigMaps: configMaps, Backups: backups}
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// jobTmpl is parsed on first use (not at start-up: most runs print no manifest).
var jobTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("job").Funcs(template.FuncMap{"q": func(s string) string { return fmt.Sprintf("%q", s) }}).Parse(`{{- if .NewSA}}apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{.SA}}
  namespace: {{.NS}}
{{- if .Annotations}}
  annotations:
{{- range $k, $v := .Annotations}}
    {{q $k}}: {{q $v}}
{{- end}}
{{- end}}
---
{{end -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{.Name}}
  namespace: {{.NS}}
  labels: {app.kubernetes.io/name: cnpg-preflight, cnpg.io/cluster: {{.Cluster}}}
rules:
- apiGroups: [postgresql.cnpg.io]
  resources: [clusters]
  verbs: [get]
  resourceNames: [{{.Cluster}}]
{{- if .Names.Backups}}
- apiGroups: [postgresql.cnpg.io]
  resources: [backups]
  verbs: [get]
  resourceNames: [{{range $i, $n := .Names.Backups}}{{if $i}}, {{end}}{{$n}}{{end}}]
{{- end}}
{{- if .Names.ObjectStores}}
- apiGroups: [barmancloud.cnpg.io]
  resources: [objectstores]
  verbs: [get]
  resourceNames: [{{range $i, $n := .Names.ObjectStores}}{{if $i}}, {{end}}{{$n}}{{end}}]
{{- end}}
{{- if .Names.Secrets}}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
  resourceNames: [{{range $i, $n := .Names.Secrets}}{{if $i}}, {{end}}{{$n}}{{end}}]
{{- end}}
{{- if .Names.ConfigMaps}}
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
  resourceNames: [{{range $i, $n := .Names.ConfigMaps}}{{if $i}}, {{end}}{{$n}}{{end}}]
{{- end}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{.Name}}
  namespace: {{.NS}}
  labels: {app.kubernetes.io/name: cnpg-preflight, cnpg.io/cluster: {{.Cluster}}}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{.Name}}
subjects:
- kind: ServiceAccount
  name: {{.SA}}
  namespace: {{.NS}}
---
{{- if .Schedule}}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{.Name}}
  namespace: {{.NS}}
  labels: {app.kubernetes.io/name: cnpg-preflight, cnpg.io/cluster: {{.Cluster}}}
spec:
  schedule: {{q .Schedule}}
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: {{.Deadline}}
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 3
  jobTemplate:
{{- else}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{.Name}}
  namespace: {{.NS}}
  labels: {app.kubernetes.io/name: cnpg-preflight, cnpg.io/cluster: {{.Cluster}}}
{{- end}}
{{.Indent}}spec:
{{.Indent}}  backoffLimit: 0
{{.Indent}}  activeDeadlineSeconds: {{.Deadline}}
{{.Indent}}  ttlSecondsAfterFinished: 86400
{{.Indent}}  template:
{{.Indent}}    metadata:
{{.Indent}}      labels:
{{- range $k, $v := .PodLabels}}
{{$.Indent}}        {{q $k}}: {{q $v}}
{{- end}}
{{.Indent}}    spec:
{{.Indent}}      serviceAccountName: {{.SA}}
{{.Indent}}      restartPolicy: Never
{{.Indent}}      securityContext:
{{.Indent}}        runAsNonRoot: true
{{.Indent}}        runAsUser: 65532
{{.Indent}}        runAsGroup: 65532
{{.Indent}}        seccompProfile: {type: RuntimeDefault}
{{.Indent}}      containers:
{{.Indent}}      - name: cnpg-preflight
{{.Indent}}        image: {{.Image}}
{{.Indent}}        args: [check,{{if .Events}} --events,{{end}} --cluster, {{.Cluster}}, --namespace, {{.NS}}, --timeout, {{.Timeout}}]
{{.Indent}}        terminationMessagePolicy: File
{{.Indent}}        resources:
{{.Indent}}          requests: {cpu: 50m, memory: 64Mi}
{{.Indent}}          limits: {memory: 256Mi}
{{.Indent}}        securityContext:
{{.Indent}}          allowPrivilegeEscalation: false
{{.Indent}}          readOnlyRootFilesystem: true
{{.Indent}}          capabilities: {drop: [ALL]}
`))
})

// ClusterServiceAccount is the ServiceAccount the Cluster's instance Pods run as: spec.serviceAccountName
// (CNPG ≥ 1.29, a pre-existing one) or the one CNPG makes with the Cluster's name.
func ClusterServiceAccount(cl *manifest.Cluster) string {
	if cl.Spec.ServiceAccountName != "" {
		return cl.Spec.ServiceAccountName
	}
	return cl.Meta.Name
}

// ServiceSelectorLabels are the labels CNPG's Services (-rw, -ro, -r) and its own Pod roles select
// instances by: never put on the Job's Pod, so that no Service sends database traffic to it.
var ServiceSelectorLabels = []string{"cnpg.io/instanceRole", "role", "cnpg.io/podRole", "cnpg.io/instanceName", "cnpg.io/jobRole"}

// JobPodLabels are the labels of the Job's Pod: those NetworkPolicies select the database Pods by
// (the Cluster's spec.inheritedMetadata.labels and cnpg.io/cluster), so that the Job's egress is
// the database's, without the labels CNPG's Services select (ServiceSelectorLabels).
func JobPodLabels(cl *manifest.Cluster) map[string]string {
	out := map[string]string{"app.kubernetes.io/name": "cnpg-preflight"}
	if im := cl.Spec.InheritedMetadata; im != nil {
		for k, v := range im.Labels {
			out[k] = v
		}
	}
	for _, k := range ServiceSelectorLabels {
		delete(out, k)
	}
	out["cnpg.io/cluster"] = cl.Meta.Name
	return out
}

// JobSpec are the choices of the job command.
type JobSpec struct {
	Image, ServiceAccount, Schedule string
	Timeout                         time.Duration // the check's --timeout (<= 0: 60 s)
	Events                          bool          // the check records Events (check --events)
}

// JobDeadline is the Job's activeDeadlineSeconds for a check timeout: reading the Cluster (one
// timeout), the targets checked concurrently (one more) and the cleanup after a timeout, plus 5
// minutes for scheduling the Pod and pulling the image. A run that hangs anyway is killed, so a
// CronJob with concurrencyPolicy Forbid is never blocked by it.
func JobDeadline(timeout time.Duration) int64 {
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	return int64((2*timeout + 15*time.Second + 5*time.Minute).Seconds())
}

// JobManifests renders ServiceAccount (when js names another one), Role, RoleBinding and Job or CronJob.
func JobManifests(cl *manifest.Cluster, set *manifest.Set, reg *providers.Registry, js JobSpec) string {
	image, sa, schedule := js.Image, js.ServiceAccount, js.Schedule
	if js.Timeout <= 0 {
		js.Timeout = 60 * time.Second
	}
	data := struct {
		Name, NS, Cluster, SA, Image, Schedule, Indent, Timeout string
		NewSA, Events                                           bool
		Annotations, PodLabels                                  map[string]string
		Names                                                   RBACNames
		Deadline                                                int64
	}{Name: "cnpg-preflight-" + cl.Meta.Name, NS: cl.Meta.Namespace, Cluster: cl.Meta.Name, SA: cl.Meta.Name, Image: image, Schedule: schedule,
		Names: NamesFor(cl, set, reg), Timeout: js.Timeout.String(), Deadline: JobDeadline(js.Timeout), Events: js.Events, PodLabels: JobPodLabels(cl)}
	if own := ClusterServiceAccount(cl); sa == "" {
		data.SA = own
	} else if sa != own {
		data.SA, data.NewSA = sa, true
		if cl.Spec.ServiceAccountTemplate != nil {
			data.Annotations = cl.Spec.ServiceAccountTemplate.Metadata.Annotations
		}
	}
	if schedule != "" {
		data.Indent = "    "
	}
	var b strings.Builder
	if err := jobTmpl().Execute(&b, data); err != nil {
		panic(err) // the template is static
	}
	return b.String()
}
