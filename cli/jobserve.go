package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/spf13/pflag"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
)

// ServeJobOptions are the flags of `job --serve`: the manifests that run serve in-cluster.
type ServeJobOptions struct {
	Enabled        bool
	Listen         string
	Interval       time.Duration
	WriteProbes    bool
	ServiceMonitor bool // also a Prometheus Operator ServiceMonitor
}

func serveJobFlags(fs *pflag.FlagSet, o *ServeJobOptions) {
	fs.BoolVar(&o.Enabled, "serve", false, "print a Deployment running serve (every Cluster of the namespace, or --cluster), its RBAC and a Service instead of a Job")
	fs.StringVar(&o.Listen, "listen", ":8080", "with --serve: address of /metrics, /healthz and /readyz")
	fs.DurationVar(&o.Interval, "interval", 15*time.Minute, "with --serve: time between two rounds")
	fs.BoolVar(&o.WriteProbes, "write-probes", false, "with --serve: include the write probes")
	fs.BoolVar(&o.ServiceMonitor, "service-monitor", false, "with --serve: also print a ServiceMonitor (Prometheus Operator)")
}

func checkServeJob(fs *pflag.FlagSet, o *JobOptions) error {
	if o.Serve.Enabled {
		if o.Schedule != "" {
			return &UsageError{Msg: "--schedule makes a CronJob; --serve a Deployment: use one or the other"}
		}
		if o.Serve.Interval < time.Second {
			return &UsageError{Msg: "--interval must be at least 1s"}
		}
		if _, port, err := net.SplitHostPort(o.Serve.Listen); err != nil || port == "" || port == "0" {
			return &UsageError{Msg: fmt.Sprintf("--listen %q: want HOST:PORT or :PORT", o.Serve.Listen)}
		}
		return nil
	}
	for _, name := range []string{"listen", "interval", "write-probes", "service-monitor"} {
		if fs.Changed(name) {
			return &UsageError{Msg: "--" + name + " goes with --serve"}
		}
	}
	return nil
}

// runServeJob prints the manifests that run serve for the Clusters of a namespace (or one).
func runServeJob(ctx context.Context, f *Factory, o *JobOptions) error {
	ns := o.Namespace
	if len(o.Files) > 0 && ns == "" {
		ns = "default"
	}
	in, err := load(ctx, f, o.Files, ns, o.Kube)
	if err != nil {
		return err
	}
	set, ns := in.set, in.namespace
	var clusters []*manifest.Cluster
	for _, c := range set.Clusters {
		if c.Meta.Namespace == ns && (o.Kube.Cluster == "" || c.Meta.Name == o.Kube.Cluster) {
			clusters = append(clusters, c)
		}
	}
	if o.Kube.Cluster != "" && len(clusters) == 0 {
		return &UsageError{Msg: fmt.Sprintf("Cluster %s/%s not found", ns, o.Kube.Cluster)}
	}
	secrets, configMaps := map[string]bool{}, map[string]bool{}
	for _, c := range clusters {
		names := NamesFor(c, set, f.Registry)
		for _, s := range names.Secrets {
			secrets[s] = true
		}
		for _, s := range names.ConfigMaps {
			configMaps[s] = true
		}
	}
	d := serveData{NS: ns, Cluster: o.Kube.Cluster, Image: o.Image, Secrets: sorted(secrets), ConfigMaps: sorted(configMaps), O: o.Serve, Name: "cnpg-preflight-serve", SA: "cnpg-preflight"}
	_, d.Port, _ = net.SplitHostPort(o.Serve.Listen)
	if d.Cluster != "" {
		d.Name += "-" + d.Cluster
		d.SA = ClusterServiceAccount(clusters[0]) // the Cluster's own ServiceAccount, as the Job: its workload identity is tested
		if t := clusters[0].Spec.ServiceAccountTemplate; t != nil && o.ServiceAccount != "" {
			d.Annotations = t.Metadata.Annotations
		}
	}
	if o.ServiceAccount != "" {
		d.SA = o.ServiceAccount
	}
	d.NewSA = d.Cluster == "" || o.ServiceAccount != "" && o.ServiceAccount != ClusterServiceAccount(clusters[0])
	_, err = io.WriteString(f.IO.Out, ServeManifests(d))
	return err
}

type serveData struct {
	Name, NS, Cluster, SA, Image, Port string
	NewSA                              bool
	Annotations                        map[string]string
	Secrets, ConfigMaps                []string
	O                                  ServeJobOptions
}

// eventsRule lets the process record Events: create them, patch the series of one that
// repeats, and list those it recorded before (the last verdict of a target).
const eventsRule = `- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, list, patch]
`

// serveTmpl is parsed on first use (not at start-up: most runs print no manifest).
var serveTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("serve").Funcs(template.FuncMap{
		"q":    func(s string) string { return fmt.Sprintf("%q", s) },
		"list": func(xs []string) string { return "[" + strings.Join(xs, ", ") + "]" },
	}).Parse(`{{- if .NewSA}}apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{.SA}}
  namespace: {{.NS}}
  labels: {app.kubernetes.io/name: cnpg-preflight}
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
  labels: {app.kubernetes.io/name: cnpg-preflight, app.kubernetes.io/instance: {{.Name}}}
rules:
- apiGroups: [postgresql.cnpg.io]
  resources: [clusters]
{{- if .Cluster}}
  verbs: [get]
  resourceNames: [{{.Cluster}}]
{{- else}}
  verbs: [list]
{{- end}}
- apiGroups: [barmancloud.cnpg.io]
  resources: [objectstores]
  verbs: [get]
{{- if .Secrets}}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
  resourceNames: {{list .Secrets}}
{{- end}}
{{- if .ConfigMaps}}
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
  resourceNames: {{list .ConfigMaps}}
{{- end}}
` + eventsRule + `---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{.Name}}
  namespace: {{.NS}}
  labels: {app.kubernetes.io/name: cnpg-preflight, app.kubernetes.io/instance: {{.Name}}}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{.Name}}
subjects:
- kind: ServiceAccount
  name: {{.SA}}
  namespace: {{.NS}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{.Name}}
  namespace: {{.NS}}
  labels: {app.kubernetes.io/name: cnpg-preflight, app.kubernetes.io/instance: {{.Name}}}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector:
    matchLabels: {app.kubernetes.io/name: cnpg-preflight, app.kubernetes.io/instance: {{.Name}}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: cnpg-preflight, app.kubernetes.io/instance: {{.Name}}}
    spec:
      serviceAccountName: {{.SA}}
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: cnpg-preflight
        image: {{.Image}}
        args: [serve, --namespace, {{.NS}}{{if .Cluster}}, --cluster, {{.Cluster}}{{end}}, --listen, {{q .O.Listen}}, --interval, {{.O.Interval}}{{if .O.WriteProbes}}, --write-probes{{end}}]
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: GOMEMLIMIT # the Go runtime collects before the container's limit is reached
          value: 200MiB
        ports:
        - {name: metrics, containerPort: {{.Port}}}
        readinessProbe:
          httpGet: {path: /readyz, port: metrics}
          periodSeconds: 10
        livenessProbe:
          httpGet: {path: /healthz, port: metrics}
          periodSeconds: 30
          failureThreshold: 3
        resources:
          requests: {cpu: 20m, memory: 96Mi}
          limits: {memory: 256Mi}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata:
  name: {{.Name}}
  namespace: {{.NS}}
  labels: {app.kubernetes.io/name: cnpg-preflight, app.kubernetes.io/instance: {{.Name}}}
spec:
  selector: {app.kubernetes.io/name: cnpg-preflight, app.kubernetes.io/instance: {{.Name}}}
  ports:
  - {name: metrics, port: {{.Port}}, targetPort: metrics}
{{- if .O.ServiceMonitor}}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{.Name}}
  namespace: {{.NS}}
  labels: {app.kubernetes.io/name: cnpg-preflight, app.kubernetes.io/instance: {{.Name}}}
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: cnpg-preflight, app.kubernetes.io/instance: {{.Name}}}
  endpoints:
  - port: metrics
    interval: 60s
    honorLabels: true # keep the namespace label of the Clusters checked
{{- end}}
`))
})

// ServeManifests renders ServiceAccount (when a new one), Role, RoleBinding, Deployment, Service
// and, when asked, a ServiceMonitor.
func ServeManifests(d serveData) string {
	var b strings.Builder
	if err := serveTmpl().Execute(&b, d); err != nil {
		panic(err) // the template is static
	}
	return b.String()
}

// withEvents adds, to the manifests of JobManifests, --events to the check's arguments and a
// Role and RoleBinding that let it record Events (before the Job or CronJob, the last document).
func withEvents(manifests string, cl *manifest.Cluster, sa string) string {
	if sa == "" {
		sa = ClusterServiceAccount(cl)
	}
	name := "cnpg-preflight-" + cl.Meta.Name + "-events"
	labels := "  labels: {app.kubernetes.io/name: cnpg-preflight, cnpg.io/cluster: " + cl.Meta.Name + "}\n"
	rbac := "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: " + name + "\n  namespace: " + cl.Meta.Namespace + "\n" + labels +
		"rules:\n" + eventsRule + "---\n" +
		"apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: " + name + "\n  namespace: " + cl.Meta.Namespace + "\n" + labels +
		"roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: " + name + "\nsubjects:\n- kind: ServiceAccount\n  name: " + sa + "\n  namespace: " + cl.Meta.Namespace + "\n---\n"
	i := strings.LastIndex(manifests, "---\n")
	return manifests[:i+4] + rbac + manifests[i+4:]
}
