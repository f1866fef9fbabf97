// Package cli implements the cnpg-preflight commands. Each command takes an options struct and
// injected streams and returns an error; only main exits (see ExitCode).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/cnpg-preflight/cnpg-preflight/checks"
	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
	"github.com/cnpg-preflight/cnpg-preflight/kube"
	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/report"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// Version is set at build time (-ldflags "-X github.com/cnpg-preflight/cnpg-preflight/cli.Version=v1.2.3").
var Version = ""

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// ErrChecksFailed is returned when at least one check failed.
var ErrChecksFailed = errors.New("at least one check failed")

// UsageError is a bad command line or unreadable input: exit 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// MaxErrorLine bounds the one line an error prints (input can be large and hostile).
const MaxErrorLine = 1000

// ExitCode maps a command's error to the process exit code: 2 for bad input or usage only;
// anything else that went wrong (a report that could not be written, say) is 1.
func ExitCode(err error) int {
	var ue *UsageError
	var ie *manifest.InputError
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue), errors.As(err, &ie):
		return ExitUsage
	}
	return ExitFailed
}

// Main runs the command line args with the factory's streams, cancelling the run on SIGINT or
// SIGTERM, and returns the exit code. It is all main does.
func Main(f *Factory, args []string) int {
	ctx, stop := signalContext()
	defer stop()
	return MainContext(ctx, f, args)
}

// MainContext runs the command line args until ctx ends and returns the exit code; errors are
// printed on the error stream as one line.
func MainContext(ctx context.Context, f *Factory, args []string) int {
	err := Run(ctx, f, args)
	if err != nil && !errors.Is(err, ErrChecksFailed) && !errors.Is(err, pflag.ErrHelp) {
		fmt.Fprintln(f.IO.ErrOut, "cnpg-preflight: "+text.Cap(text.Sanitize(err.Error()), MaxErrorLine))
	}
	return ExitCode(err)
}

const usage = `cnpg-preflight tells, before backups are turned on, whether CloudNativePG's backup client
(barman-cloud) will really be able to use the object stores a Cluster is configured with.

Usage:
  cnpg-preflight check -f PATH [-f PATH ...] [flags]     manifests from files
  cnpg-preflight check --cluster NAME [-n NS] [flags]    one Cluster of a live cluster
  cnpg-preflight check -n NS | -A [flags]                every Cluster of a namespace / all namespaces
  cnpg-preflight serve -n NS | --cluster NAME | -A | -f PATH [flags]
                                                         keep checking; Prometheus metrics, Events
  cnpg-preflight job --cluster NAME -n NS [flags]        print RBAC + Job manifests to run the check in-cluster
  cnpg-preflight job --serve -n NS [flags]               print RBAC + Deployment + Service to run serve in-cluster
  cnpg-preflight policy -f PATH | --cluster NAME | -n NS | -A [flags]
                                                         print the least-privilege policy of each object store
  cnpg-preflight version

Commands:
  check     probe every object-store target of the Clusters (files or a live cluster)
  serve     re-check every interval; /metrics, /healthz, /readyz; Events on verdict changes
  job       print ServiceAccount/Role/RoleBinding/Job (or CronJob) manifests for one Cluster,
            or with --serve the Deployment, its RBAC and a Service
  policy    print the least privilege barman-cloud needs (S3 IAM policy, Azure SAS/role, GCS bindings)
  version   print the version

Run 'cnpg-preflight check --help' for the flags and examples.
`

// Run dispatches to a command.
func Run(ctx context.Context, f *Factory, args []string) error {
	if len(args) == 0 {
		io.WriteString(f.IO.ErrOut, usage)
		return &UsageError{Msg: "missing command (check, serve, job, policy or version)"}
	}
	switch args[0] {
	case "check":
		o, err := parseCheck(args[1:], f.IO.Out)
		if err != nil {
			return err
		}
		return RunCheck(ctx, f, o)
	case "serve":
		o, err := parseServe(args[1:], f.IO.Out)
		if err != nil {
			return err
		}
		return RunServe(ctx, f, o)
	case "job":
		o, err := parseJob(args[1:], f.IO.Out)
		if err != nil {
			return err
		}
		return RunJob(ctx, f, o)
	case "policy":
		o, err := parsePolicy(args[1:], f.IO.Out)
		if err != nil {
			return err
		}
		return RunPolicy(ctx, f, o)
	case "version", "--version":
		_, err := fmt.Fprintln(f.IO.Out, "cnpg-preflight "+version())
		return err
	case "help", "-h", "--help":
		_, err := io.WriteString(f.IO.Out, usage)
		return err
	}
	return &UsageError{Msg: fmt.Sprintf("unknown command %q (want check, serve, job, policy or version; see --help)", args[0])}
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// CheckOptions are the flags of the check command.
type CheckOptions struct {
	Files       []string
	Namespace   string
	Output      string
	Timeout     time.Duration
	ReadOnly    bool
	Concurrency int
	NoColor     bool
	Offline     bool
	Deep        bool
	Verbose     bool
	Kube        kube.Options // live input: --cluster, -A, --kubeconfig, --context (and -n)
	Events      bool         // record an Event on the Cluster when a target's verdict changes
	// TerminationLog receives a short summary when running in a Pod (KUBERNETES_SERVICE_HOST set).
	TerminationLog string
}

const checkHelp = `Usage: cnpg-preflight check -f PATH [-f PATH ...] [flags]

       cnpg-preflight check --cluster NAME [-n NS] | -n NS | -A [flags]

Reads Cluster (postgresql.cnpg.io/v1), ObjectStore (barmancloud.cnpg.io/v1) and Secret (v1)
objects — from files, or from a live cluster with kubectl's connection flags — and checks every
object-store target: the backup destination and each external cluster used as a recovery or
replica source. Sources are only read, never written.

Examples:
  # one Cluster of the current kubectl context, as the database would see its bucket
  cnpg-preflight check --cluster pg-main -n db

  # every Cluster in every namespace, 16 targets at a time
  cnpg-preflight check -A --concurrency 16 -o markdown


  # a Cluster and its Secrets in one file
  cnpg-preflight check -f cluster.yaml -f secrets.yaml

  # every manifest in a directory, JSON for a pipeline
  cnpg-preflight check -f deploy/postgres/ -o json > preflight.json

  # from kubectl, without writing anything to the bucket
  kubectl get cluster,secret -n db -o yaml | cnpg-preflight check -f - -n db --read-only

  # JUnit for the CI test report, 30 s per target
  cnpg-preflight check -f manifests/ -o junit --timeout 30s > preflight.xml

Exit codes: 0 no check failed (warnings allowed), 1 a check failed, 2 bad input or usage.

Flags:
`

func parseCheck(args []string, stdout io.Writer) (*CheckOptions, error) {
	o := &CheckOptions{}
	fs := pflag.NewFlagSet("check", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	inputFlags(fs, &o.Files, &o.Namespace, &o.Kube)
	fs.BoolVar(&o.Events, "events", false, "live: record a Kubernetes Event on the Cluster when a target's verdict changes (see README)")
	fs.StringVar(&o.TerminationLog, "termination-log", "/dev/termination-log", "in a Pod, where the summary for kubectl get pod goes")
	fs.StringVarP(&o.Output, "output", "o", "table", "output format: "+text.Join(report.Formats, "or"))
	fs.DurationVar(&o.Timeout, "timeout", 60*time.Second, "time limit for all checks of one target")
	fs.BoolVar(&o.ReadOnly, "read-only", false, "no write, read-back, delete or multipart probe anywhere")
	fs.BoolVar(&o.Deep, "deep", false, "also upload multipart parts of unequal sizes, as barman-cloud-backup does with snappy (another 5 MiB per target)")
	fs.IntVar(&o.Concurrency, "concurrency", 16, "targets checked at once")
	fs.BoolVar(&o.NoColor, "no-color", false, "no colours in the table (also: NO_COLOR set)")
	fs.BoolVar(&o.Offline, "offline", false, "config and credentials checks only, without any network access (a lint)")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "log each check and HTTP request (method, host, path, status) to stderr")
	if err := parseFlags(fs, args, checkHelp, stdout); err != nil {
		return nil, err
	}
	if err := checkInput(o.Files, &o.Namespace, &o.Kube); err != nil {
		return nil, err
	}
	if o.Events && len(o.Files) > 0 {
		return nil, &UsageError{Msg: eventsNeedLive}
	}
	valid := false
	for _, f := range report.Formats {
		valid = valid || f == o.Output
	}
	if !valid {
		return nil, &UsageError{Msg: fmt.Sprintf("unknown output format %q (want %s)", o.Output, text.Join(report.Formats, "or"))}
	}
	if err := checkLimits(o.Timeout, o.Concurrency); err != nil {
		return nil, err
	}
	o.Kube.Timeout = o.Timeout
	return o, nil
}

// parseFlags parses a command's flags: --help prints help and the flags (pflag.ErrHelp); a bad
// flag or a stray argument is a UsageError.
func parseFlags(fs *pflag.FlagSet, args []string, help string, stdout io.Writer) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			io.WriteString(stdout, help+fs.FlagUsages())
			return err
		}
		return &UsageError{Msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return &UsageError{Msg: fmt.Sprintf("unexpected argument %q (manifests are given with -f)", fs.Arg(0))}
	}
	return nil
}

func checkLimits(timeout time.Duration, concurrency int) error {
	if timeout <= 0 {
		return &UsageError{Msg: "--timeout must be positive"}
	}
	if concurrency < 1 {
		return &UsageError{Msg: "--concurrency must be at least 1"}
	}
	return nil
}

const eventsNeedLive = "--events records Events on live Clusters: read them with --cluster, -n or -A, not -f"

// inputFlags are the flags that say what to read: files, or kubectl's connection flags.
func inputFlags(fs *pflag.FlagSet, files *[]string, namespace *string, ko *kube.Options) {
	fs.StringArrayVarP(files, "filename", "f", nil, "manifest file, directory (*.yaml, *.yml, *.json) or - for stdin; repeatable")
	fs.StringVarP(namespace, "namespace", "n", "", "files: namespace of objects that name none (default \"default\"); live: the namespace to read (default: the context's)")
	fs.StringVar(&ko.Cluster, "cluster", "", "live: check this Cluster")
	fs.BoolVarP(&ko.AllNamespaces, "all-namespaces", "A", false, "live: check the Clusters of every namespace")
	fs.StringVar(&ko.Kubeconfig, "kubeconfig", "", "live: kubeconfig file (default: KUBECONFIG, ~/.kube/config, or the in-cluster config in a Pod)")
	fs.StringVar(&ko.Context, "context", "", "live: kubeconfig context")
}

// checkInput validates the input flags and settles the namespace (files: "default" when none).
func checkInput(files []string, namespace *string, ko *kube.Options) error {
	live := ko.Cluster != "" || ko.AllNamespaces || ko.Kubeconfig != "" || ko.Context != ""
	switch {
	case len(files) > 0 && live:
		return &UsageError{Msg: "-f reads manifest files; --cluster, -A, --kubeconfig and --context read a live cluster: use one or the other"}
	case len(files) == 0 && !live && *namespace == "":
		return &UsageError{Msg: "no input: give manifests with -f PATH (a file, a directory or - for stdin), or read a live cluster with --cluster NAME, -n NAMESPACE or -A"}
	case ko.AllNamespaces && ko.Cluster != "":
		return &UsageError{Msg: "--cluster and -A cannot be combined"}
	}
	ko.Namespace = *namespace
	if len(files) > 0 && *namespace == "" {
		*namespace = "default"
	}
	return nil
}

// RunCheck reads the manifests (or the live cluster), runs the checks and renders the matrix.
func RunCheck(ctx context.Context, f *Factory, o *CheckOptions) error {
	io := f.IO
	stderr := io.ErrOut
	in, err := load(ctx, f, o.Files, o.Namespace, o.Kube)
	if err != nil {
		return err
	}
	set := in.set
	ts := in.build(f)
	if len(ts) == 0 {
		hint := ""
		switch {
		case len(set.Clusters) == 0 && len(set.ObjectStores) > 0:
			hint = "; an ObjectStore is checked through the Cluster whose spec.plugins or spec.externalClusters name it: add that Cluster's manifest"
		case len(set.Clusters) > 0:
			hint = "; none has spec.backup.barmanObjectStore, a barman-cloud.cloudnative-pg.io plugin entry, or an external cluster with barmanObjectStore or that plugin"
		}
		return &UsageError{Msg: fmt.Sprintf("no Cluster with an object-store configuration found in %s (read %s)%s", in.where, set.Summary(), hint)}
	}
	var logf providers.Logf
	if o.Verbose {
		var mu sync.Mutex
		start := time.Now()
		logf = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(stderr, "[%6.3fs] %s\n", time.Since(start).Seconds(), text.Cap(text.Sanitize(fmt.Sprintf(format, args...)), MaxErrorLine))
		}
	}
	var progress func(done, total, failed int)
	if io.ErrTTY && len(ts) > 1 && !o.Verbose {
		progress = func(done, total, failed int) {
			fmt.Fprintf(stderr, "\rchecked %d/%d targets, %d with failures", done, total, failed)
			if done == total {
				fmt.Fprint(stderr, "\r\033[K")
			}
		}
	}
	m := checks.Execute(ctx, ts, checks.Options{Registry: f.Registry, Resolver: f.Resolver, ReadOnly: o.ReadOnly, Offline: o.Offline, Deep: o.Deep,
		Timeout: o.Timeout, Concurrency: o.Concurrency, Logf: logf, Progress: progress})
	color := !o.NoColor && io.getenv("NO_COLOR") == "" && io.OutTTY
	if err := report.Render(io.Out, m, o.Output, report.Options{Color: color}); err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	if io.getenv("KUBERNETES_SERVICE_HOST") != "" {
		writeTerminationLog(o.TerminationLog, m)
	}
	if o.Events && in.live != nil && ctx.Err() == nil {
		recordEvents(ctx, in.live.Recorder(instance(io)), m, set, func(v kube.Verdict, err error) {
			if err != nil {
				fmt.Fprintf(stderr, "cnpg-preflight: cannot record the Event of %s: %s\n", v.Target, text.OneLine(err.Error()))
			}
		})
	}
	if m.Failed() {
		return ErrChecksFailed
	}
	return nil
}

// loadFiles reads manifest files, or stops waiting when ctx ends (standard input or a FIFO may
// never deliver; the reading goroutine is abandoned, the process is about to exit).
func loadFiles(ctx context.Context, files []string, stdin io.Reader, namespace string) (*manifest.Set, error) {
	type result struct {
		set *manifest.Set
		err error
	}
	ch := make(chan result, 1)
	go func() {
		set, err := manifest.Load(files, stdin, namespace)
		ch <- result{set, err}
	}()
	select {
	case r := <-ch:
		return r.set, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w while reading %s; nothing was checked", context.Cause(ctx), strings.Join(files, ", "))
	}
}

// input is what a command read.
type input struct {
	set       *manifest.Set
	secrets   func(namespace string) providers.SecretLookup
	where     string // what was read, for messages
	namespace string // the namespace in effect
	live      Live   // the cluster read (nil for files)
}

// load reads the input: manifest files (namespace: of objects that name none), or a live cluster
// (Clusters, their ObjectStores, and only the Secrets they reference, read lazily).
func load(ctx context.Context, f *Factory, files []string, namespace string, ko kube.Options) (*input, error) {
	if len(files) > 0 {
		set, err := loadFiles(ctx, files, f.IO.In, namespace)
		if err != nil {
			return nil, err
		}
		return &input{set: set, secrets: func(ns string) providers.SecretLookup { return targets.SecretsFromSet(set, ns) },
			where: strings.Join(files, ", "), namespace: namespace}, nil
	}
	c, err := f.Live(ko)
	if err != nil {
		return nil, &UsageError{Msg: err.Error()}
	}
	in, err := loadLive(ctx, c, ko)
	if err != nil {
		return nil, &UsageError{Msg: err.Error()}
	}
	return in, nil
}

// loadLive reads the Clusters of a live cluster and the ObjectStores they reference.
func loadLive(ctx context.Context, c Live, ko kube.Options) (*input, error) {
	set, err := c.Load(ctx, ko)
	if err != nil {
		return nil, err
	}
	in := &input{set: set, secrets: c.Secrets, where: "namespace " + c.Namespace(), namespace: c.Namespace(), live: c}
	switch {
	case ko.AllNamespaces:
		in.where = "any namespace"
	case ko.Cluster != "":
		in.where = "Cluster " + c.Namespace() + "/" + ko.Cluster
	}
	return in, nil
}

// writeTerminationLog puts a summary (under 4 KiB) where Kubernetes shows it as the container's
// termination message (the caller knows it runs in a Pod).
func writeTerminationLog(path string, m *report.Matrix) {
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(report.Brief(m, 4000))
}

// signalContext is cancelled, with the signal as cause, on SIGINT or SIGTERM.
//
// Every way a run can be told to end cleans up the same way: SIGHUP (a dropped SSH session) and
// SIGQUIT are handled like SIGINT and SIGTERM (the probes stop, probe objects are deleted, the
// partial report is written). SIGPIPE never kills the process: a write to a closed pipe returns
// an error instead (a closed stdout is reported; a closed stderr only stops the log).
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	go func() {
		for {
			select {
			case s := <-ch:
				cancel(fmt.Errorf("interrupted by %s", sigName(s)))
			case <-pipe:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ctx, func() { signal.Stop(ch); signal.Stop(pipe); cancel(nil) }
}

func sigName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	}
	return s.String()
}
