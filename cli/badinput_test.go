package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// canaries are secret values used in testdata/bad: none may appear in any output.
var canaries = []string{"s3-CANARY-secret-value", "AKIACANARY"}

// testFactory is the production factory with buffers for streams and env for the environment.
func testFactory(stdin string, env map[string]string) (*Factory, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return NewFactory(&IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errb, Getenv: func(k string) string { return env[k] }}), &out, &errb
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLIEnv(t, nil, args...)
}

func runCLIEnv(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	f, out, errb := testFactory("", env)
	code = MainContext(context.Background(), f, args)
	stdout, stderr = out.String(), errb.String()
	for _, bad := range []string{"panic", "goroutine ", ".go:"} {
		if strings.Contains(stderr, bad) || strings.Contains(stdout, bad) {
			t.Errorf("output contains %q (a stack trace?):\n%s%s", bad, stdout, stderr)
		}
	}
	for _, c := range canaries {
		for _, form := range []string{c, base64.StdEncoding.EncodeToString([]byte(c))} {
			if strings.Contains(stdout+stderr, form) {
				t.Errorf("output leaks a secret value")
			}
		}
	}
	if code == ExitUsage && strings.Count(strings.TrimSpace(stderr), "\n") > 0 && !strings.HasPrefix(stderr, "cnpg-preflight tells") {
		t.Errorf("exit 2 must print one line, got:\n%s", stderr)
	}
	return code, stdout, stderr
}

// TestBadInputCorpus runs every case of testdata/bad: NAME.yaml|json with NAME.want holding the
// exit code and the exact expected line (exit 2: the first line of stderr; otherwise a line of the
// table output).
func TestBadInputCorpus(t *testing.T) {
	wants, err := filepath.Glob("../testdata/bad/*.want")
	if err != nil || len(wants) < 60 {
		t.Fatalf("corpus: %d cases, %v", len(wants), err)
	}
	for _, w := range wants {
		base := strings.TrimSuffix(w, ".want")
		file := base + ".yaml"
		if _, err := os.Stat(file); err != nil {
			file = base + ".json"
		}
		t.Run(filepath.Base(base), func(t *testing.T) {
			spec, _ := os.ReadFile(w)
			lines := strings.SplitN(strings.TrimRight(string(spec), "\n"), "\n", 2)
			wantCode := map[string]int{"exit 0": 0, "exit 1": 1, "exit 2": 2}[lines[0]]
			want := strings.ReplaceAll(lines[1], "{file}", file)
			code, stdout, stderr := runCLI(t, "check", "--offline", "--no-color", "-f", file)
			if code != wantCode {
				t.Fatalf("exit %d, want %d\n%s%s", code, wantCode, stdout, stderr)
			}
			if code == ExitUsage {
				if got := strings.SplitN(stderr, "\n", 2)[0]; got != want {
					t.Errorf("first line\n got: %s\nwant: %s", got, want)
				}
				return
			}
			for _, l := range strings.Split(stdout, "\n") {
				if l == want {
					return
				}
			}
			t.Errorf("no line\n  %s\nin:\n%s", want, stdout)
		})
	}
}

// TestBadInputMadeAtRunTime covers inputs that are not files in the corpus.
func TestBadInputMadeAtRunTime(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	f, _ := os.Create(big)
	f.Truncate(50 << 20)
	f.Close()
	os.Symlink(filepath.Join(dir, "gone.yaml"), filepath.Join(dir, "dangling.yaml"))
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	dup := filepath.Join(dir, "dup")
	os.Mkdir(dup, 0o755)
	cluster := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg, namespace: db}\nspec: {}\n"
	os.WriteFile(filepath.Join(dup, "a.yaml"), []byte(cluster), 0o644)
	os.WriteFile(filepath.Join(dup, "b.yaml"), []byte(cluster), 0o644)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"50 MiB file", []string{"check", "-f", big}, "cnpg-preflight: " + big + ": file is larger than 8 MiB; is this a manifest?"},
		{"missing file", []string{"check", "-f", filepath.Join(dir, "nope.yaml")}, "cnpg-preflight: " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"},
		{"dangling symlink", []string{"check", "-f", filepath.Join(dir, "dangling.yaml")}, "cnpg-preflight: " + filepath.Join(dir, "dangling.yaml") + ": no such file or directory"},
		{"directory without manifests", []string{"check", "-f", empty}, "cnpg-preflight: " + empty + ": directory holds no *.yaml, *.yml or *.json file"},
		{"same Cluster in two files", []string{"check", "-f", dup}, "cnpg-preflight: " + filepath.Join(dup, "b.yaml") + ":1: metadata.name: Cluster db/pg is defined twice (first in " + filepath.Join(dup, "a.yaml") + ":1)"},
		{"unknown flag", []string{"check", "--nope"}, "cnpg-preflight: unknown flag: --nope"},
		{"no input", []string{"check"}, "cnpg-preflight: no input: give manifests with -f PATH (a file, a directory or - for stdin), or read a live cluster with --cluster NAME, -n NAMESPACE or -A"},
		{"bad output", []string{"check", "-f", "x", "-o", "yaml"}, `cnpg-preflight: unknown output format "yaml" (want table, json, junit or markdown)`},
		{"bad timeout", []string{"check", "-f", "x", "--timeout", "soon"}, `cnpg-preflight: invalid argument "soon" for "--timeout" flag: must be a duration like "30s" or "5m"`},
		{"unknown command", []string{"lint"}, `cnpg-preflight: unknown command "lint" (want check, serve, job, policy or version; see --help)`},
		{"stray argument", []string{"check", "-f", "x", "extra"}, `cnpg-preflight: unexpected argument "extra" (manifests are given with -f)`},
		{"check --events with files", []string{"check", "-f", "x", "--events"}, "cnpg-preflight: --events records Events on live Clusters: read them with --cluster, -n or -A, not -f"},
		{"serve without input", []string{"serve"}, "cnpg-preflight: no input: give manifests with -f PATH (a file, a directory or - for stdin), or read a live cluster with --cluster NAME, -n NAMESPACE or -A"},
		{"serve missing file", []string{"serve", "-f", filepath.Join(dir, "nope.yaml")}, "cnpg-preflight: " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"},
		{"serve short interval", []string{"serve", "-f", "x", "--interval", "10ms"}, "cnpg-preflight: --interval must be at least 1s"},
		{"serve --events with files", []string{"serve", "-f", "x", "--events"}, "cnpg-preflight: --events records Events on live Clusters: read them with --cluster, -n or -A, not -f"},
		{"serve bad listen address", []string{"serve", "-f", "../testdata/bad/57-unknown-field-endpointUrl.yaml", "--listen", "127.0.0.1:99999"}, "cnpg-preflight: --listen 127.0.0.1:99999: listen tcp: address 99999: invalid port"},
		{"serve no target", []string{"serve", "-f", dup + "/a.yaml"}, "cnpg-preflight: no Cluster with an object-store configuration found in " + dup + "/a.yaml (read 1 Cluster(s))"},
		{"job serve flag without --serve", []string{"job", "--cluster", "pg", "-f", "x", "--interval", "1m"}, "cnpg-preflight: --interval goes with --serve"},
		{"job --serve and --schedule", []string{"job", "--serve", "-f", "x", "--schedule", "@daily"}, "cnpg-preflight: --schedule makes a CronJob; --serve a Deployment: use one or the other"},
		{"job --serve bad listen", []string{"job", "--serve", "-f", "x", "--listen", "8080"}, `cnpg-preflight: --listen "8080": want HOST:PORT or :PORT`},
	}
	if os.Geteuid() != 0 { // root reads everything
		unreadable := filepath.Join(dir, "secret.yaml")
		os.WriteFile(unreadable, []byte(cluster), 0o000)
		cases = append(cases, struct {
			name string
			args []string
			want string
		}{"unreadable file", []string{"check", "-f", unreadable}, "cnpg-preflight: " + unreadable + ": permission denied"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, c.args...)
			if code != ExitUsage {
				t.Fatalf("exit %d, want 2\n%s%s", code, stdout, stderr)
			}
			if got := strings.SplitN(stderr, "\n", 2)[0]; got != c.want {
				t.Errorf("first line\n got: %s\nwant: %s", got, c.want)
			}
		})
	}
}
