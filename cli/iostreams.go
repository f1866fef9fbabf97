package cli

import (
	"context"
	"io"
	"net"
	"os"
	"strings"

	"github.com/cnpg-preflight/cnpg-preflight/kube"
	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
	"github.com/cnpg-preflight/cnpg-preflight/providers/all"
	"github.com/cnpg-preflight/cnpg-preflight/targets"
)

// IOStreams are a command's streams and what it knows about its terminal and environment
// (after gh's iostreams): commands never look at os.Stdout or os.Getenv themselves.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	OutTTY bool                // Out is a terminal (colours)
	ErrTTY bool                // ErrOut is a terminal (progress line)
	Getenv func(string) string // the process environment (NO_COLOR, KUBERNETES_SERVICE_HOST, …)
	// Environ lists the process environment (KEY=value); in a Pod (the Job) it is the backup
	// client's too. May be nil.
	Environ func() []string
}

// System returns the process's own streams and environment.
func System() *IOStreams {
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, OutTTY: isTerminal(os.Stdout), ErrTTY: isTerminal(os.Stderr), Getenv: os.Getenv, Environ: os.Environ}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (s *IOStreams) getenv(k string) string {
	if s.Getenv == nil {
		return ""
	}
	return s.Getenv(k)
}

// liveObjects reads whole Secrets and ConfigMaps by name (envFrom, valueFrom), when the live
// cluster can (kube.Client).
type liveObjects interface {
	SecretObjects(namespace string) func(ctx context.Context, name string) (map[string][]byte, error)
	ConfigMaps(namespace string) func(ctx context.Context, name string) (map[string][]byte, error)
}

// envSources are where the backup clients' environments are read from: the input's Secrets and
// ConfigMaps, and the process environment only when it runs in a Pod (the Job).
func (in *input) envSources(io *IOStreams) targets.EnvSources {
	src := targets.SourcesFromSet(in.set)
	if in.live != nil {
		src = targets.EnvSources{}
		if l, ok := in.live.(liveObjects); ok {
			src.Secrets = func(ns string) targets.ObjectLookup { return l.SecretObjects(ns) }
			src.ConfigMaps = func(ns string) targets.ObjectLookup { return l.ConfigMaps(ns) }
		}
	}
	if io.getenv("KUBERNETES_SERVICE_HOST") != "" && io.Environ != nil {
		src.PodEnv = io.getenv
		for _, kv := range io.Environ() {
			if k, _, ok := strings.Cut(kv, "="); ok {
				src.PodEnvNames = append(src.PodEnvNames, k)
			}
		}
	}
	return src
}

// build returns the targets of what was read.
func (in *input) build(f *Factory) []*targets.Target {
	return targets.BuildWith(in.set, in.secrets, f.Registry, in.envSources(f.IO))
}

// Live is a live Kubernetes cluster to read from (kube.Client).
type Live interface {
	Namespace() string
	Load(ctx context.Context, o kube.Options) (*manifest.Set, error)
	Secrets(namespace string) providers.SecretLookup
	Forget()                                 // drop the Secrets read so far (serve: each round reads them again)
	Recorder(instance string) *kube.Recorder // Events on the Clusters (--events)
}

// Factory holds what commands take from outside the process's logic (after gh's cmdutil.Factory):
// streams, the provider registry, name resolution and the live-cluster loader.
type Factory struct {
	IO       *IOStreams
	Registry *providers.Registry
	Resolver *net.Resolver // nil: the system's
	Live     func(kube.Options) (Live, error)
}

// NewFactory returns the production factory for io.
func NewFactory(io *IOStreams) *Factory {
	return &Factory{
		IO:       io,
		Registry: all.Registry(all.Settings{GCSEmulatorHost: io.getenv("STORAGE_EMULATOR_HOST")}),
		Live:     func(o kube.Options) (Live, error) { return kube.New(o) },
	}
}
