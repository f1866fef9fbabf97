package cli

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/cnpg-preflight/cnpg-preflight/checks"
	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
	"github.com/cnpg-preflight/cnpg-preflight/kube"
	"github.com/cnpg-preflight/cnpg-preflight/monitor"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// ServeOptions are the flags of the serve command.
type ServeOptions struct {
	Files       []string
	Namespace   string
	Kube        kube.Options
	Listen      string        // address of /metrics, /healthz and /readyz
	Interval    time.Duration // between the starts of two rounds (jittered by ±10 %)
	WriteProbes bool          // include the write, read-back, delete and multipart probes
	Events      bool          // record Events on the Clusters (live input)
	Timeout     time.Duration // per target
	Concurrency int
	Verbose     bool
}

const serveHelp = `Usage: cnpg-preflight serve --cluster NAME [-n NS] | -n NS | -A | -f PATH [flags]

Keeps checking: every --interval (jittered by ±10 %, rounds never overlap) it re-reads the
Clusters — a live namespace is listed again each round, so new Clusters are picked up and deleted
ones dropped; files are read once — runs the checks, read-only unless --write-probes, and
serves the verdicts as Prometheus metrics on /metrics, plus /healthz and /readyz. With live input
it records a Kubernetes Event on a Cluster when a target's verdict changes (pass to fail and
back). It exits only on SIGTERM or SIGINT (0) or on bad input (2).

Examples:
  # every Cluster of namespace db, every 15 minutes, metrics on :8080
  cnpg-preflight serve -n db

  # print the Deployment, its RBAC and a Service to run it in-cluster
  cnpg-preflight job --serve -n db | kubectl apply -f -

  # every 5 minutes, with the write probes, one Cluster
  cnpg-preflight serve --cluster pg-main -n db --interval 5m --write-probes

Flags:
`

func parseServe(args []string, stdout io.Writer) (*ServeOptions, error) {
	o := &ServeOptions{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	inputFlags(fs, &o.Files, &o.Namespace, &o.Kube)
	fs.StringVar(&o.Listen, "listen", ":8080", "address of /metrics, /healthz and /readyz")
	fs.DurationVar(&o.Interval, "interval", 15*time.Minute, "time between the starts of two rounds (jittered by ±10 %)")
	fs.BoolVar(&o.WriteProbes, "write-probes", false, "include the write, read-back, delete and multipart probes (periodic runs are read-only by default)")
	fs.BoolVar(&o.Events, "events", true, "live: record a Kubernetes Event on the Cluster when a target's verdict changes")
	fs.DurationVar(&o.Timeout, "timeout", 60*time.Second, "time limit for all checks of one target (and for each Kubernetes API request)")
	fs.IntVar(&o.Concurrency, "concurrency", 16, "targets checked at once")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "log each check and HTTP request (method, host, path, status) to stderr")
	if err := parseFlags(fs, args, serveHelp, stdout); err != nil {
		return nil, err
	}
	if err := checkInput(o.Files, &o.Namespace, &o.Kube); err != nil {
		return nil, err
	}
	if err := checkLimits(o.Timeout, o.Concurrency); err != nil {
		return nil, err
	}
	switch {
	case len(o.Files) > 0 && fs.Changed("events") && o.Events:
		return nil, &UsageError{Msg: eventsNeedLive}
	case o.Interval < time.Second:
		return nil, &UsageError{Msg: "--interval must be at least 1s"}
	}
	if len(o.Files) > 0 {
		o.Events = false
	}
	o.Kube.Timeout = o.Timeout
	return o, nil
}

// server is one serve process: its input, its state and its loop.
type server struct {
	f     *Factory
	o     *ServeOptions
	st    *monitor.State
	in    *input          // files: read once; live: re-read each round
	rec   *kube.Recorder  // nil without Events
	logMu sync.Mutex      // log lines from the loop and the HTTP server
	prev  map[string]bool // each target's last verdict (failed?), for the log
}

// RunServe checks the Clusters every interval and serves the verdicts until ctx ends (a signal);
// then it stops the round in flight (its probe objects are still deleted), stops serving and
// returns nil. Only bad input (flags, files, the listen address, the kubeconfig) is an error.
func RunServe(ctx context.Context, f *Factory, o *ServeOptions) error {
	s := &server{f: f, o: o, st: monitor.NewState(version()), prev: map[string]bool{}}
	if len(o.Files) > 0 {
		in, err := load(ctx, f, o.Files, o.Namespace, o.Kube)
		if err != nil {
			return err
		}
		if len(in.build(f)) == 0 {
			return &UsageError{Msg: fmt.Sprintf("no Cluster with an object-store configuration found in %s (read %d Cluster(s))", in.where, len(in.set.Clusters))}
		}
		s.in = in
	} else {
		c, err := f.Live(o.Kube)
		if err != nil {
			return &UsageError{Msg: err.Error()}
		}
		s.in = &input{live: c, namespace: c.Namespace()}
		if o.Events {
			s.rec = c.Recorder(instance(f.IO))
		}
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return &UsageError{Msg: fmt.Sprintf("--listen %s: %s", o.Listen, text.OneLine(err.Error()))}
	}
	srv := &http.Server{Handler: s.st.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 40 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	mode := "read-only"
	if o.WriteProbes {
		mode = "with write probes"
	}
	s.logf("serving /metrics, /healthz and /readyz on %s; checking every %s (±10 %%), %s", ln.Addr(), o.Interval, mode)
	s.loop(ctx)
	s.st.Stopping()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shut)
	<-served
	s.logf("stopped: %s", text.OneLine(context.Cause(ctx).Error()))
	return nil
}

func (s *server) logf(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.f.IO.ErrOut, "%s %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// loop runs rounds until ctx ends: one at a time, each starting an interval (jittered) after the
// previous one started, or right after it when it took longer. A round whose input could not be
// read is tried again sooner (30 s at most).
func (s *server) loop(ctx context.Context) {
	for {
		start := time.Now()
		wait := s.o.Interval
		if !s.round(ctx) {
			wait = min(wait, 30*time.Second)
		}
		if ctx.Err() != nil {
			return
		}
		wait = time.Duration(float64(wait)*(0.9+0.2*rand.Float64())) - time.Since(start)
		s.st.Expect(max(wait, 0) + s.o.Timeout + 30*time.Second) // the next round's discovery
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// round reads the input (live: the Clusters again, and the Secrets afresh), checks every
// target, publishes the matrix and records the Events. It reports whether the input was read.
func (s *server) round(ctx context.Context) bool {
	start := time.Now()
	s.st.Expect(s.o.Timeout + 30*time.Second)
	in := s.in
	if in.live != nil {
		in.live.Forget()
		var err error
		if in, err = loadLive(ctx, in.live, s.o.Kube); err != nil {
			if ctx.Err() == nil {
				s.st.DiscoveryFailed()
				s.logf("cannot read the Clusters: %s", text.OneLine(err.Error()))
			}
			return false
		}
	}
	ts := in.build(s.f)
	s.st.Expect(monitor.RoundBound(len(ts), s.o.Concurrency, s.o.Timeout))
	var logf providers.Logf
	if s.o.Verbose {
		logf = s.logf
	}
	m := checks.Execute(ctx, ts, checks.Options{Registry: s.f.Registry, Resolver: s.f.Resolver, ReadOnly: !s.o.WriteProbes,
		Timeout: s.o.Timeout, Concurrency: s.o.Concurrency, Logf: logf})
	if ctx.Err() != nil { // interrupted: a partial matrix is not published, its leftovers are named
		for _, t := range m.Targets {
			for _, k := range t.Leftovers {
				s.logf("%s: probe object left behind by the interrupted round: %s", t.ID, k)
			}
		}
		return true
	}
	s.st.RoundDone(m, start)
	failed := 0
	seen := map[string]bool{}
	for _, t := range m.Targets {
		seen[t.ID] = true
		if t.Failed() {
			failed++
		}
		if prev, ok := s.prev[t.ID]; ok && prev != t.Failed() || !ok && t.Failed() {
			s.logf("%s: %s", t.ID, text.OneLine(EventNote(t)))
		}
		s.prev[t.ID] = t.Failed()
	}
	for id := range s.prev {
		if !seen[id] {
			delete(s.prev, id)
		}
	}
	s.logf("round done: %d target(s), %d failing, %s", len(ts), failed, time.Since(start).Round(time.Millisecond))
	if s.rec != nil {
		ectx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		defer cancel()
		s.st.Expect(s.o.Timeout + 10*time.Second)
		recordEvents(ectx, s.rec, m, in.set, func(v kube.Verdict, err error) {
			s.st.EventRecorded(v.Reason(), err)
			if err != nil {
				s.logf("cannot record the Event of %s (tried again next round): %s", v.Target, text.OneLine(err.Error()))
			}
		})
	}
	return true
}
