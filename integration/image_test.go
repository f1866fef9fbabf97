package integration

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/cnpg-preflight/cnpg-preflight/internal/testenv"
	"github.com/cnpg-preflight/cnpg-preflight/report"
)

// The tool's own image (make images, or deploy/Dockerfile) checks the servers from a container.
func TestImageAgainstServers(t *testing.T) {
	t.Parallel()
	if !testenv.DockerAnswers() {
		t.Skip("no Docker engine answers: the image test needs one (.ci/run starts one when it can)")
	}
	e, mc, bucket := minioBucket(t)
	before := testenv.Snapshot(t, mc, bucket)
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(path, []byte(e.root(bucket).yaml()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{Started: true, ContainerRequest: testcontainers.ContainerRequest{
		Image:              testenv.PreflightImage,
		Cmd:                []string{"check", "-f", "/manifests/cluster.yaml", "-o", "json"},
		Files:              []testcontainers.ContainerFile{{HostFilePath: path, ContainerFilePath: "/manifests/cluster.yaml", FileMode: 0o644}},
		HostConfigModifier: func(hc *container.HostConfig) { hc.NetworkMode = "host" },
		WaitingFor:         wait.ForExit().WithExitTimeout(90 * time.Second),
	}})
	if k != nil {
		defer testcontainers.TerminateContainer(k)
	}
	if err != nil {
		t.Fatalf("image %s: %v (build it with make images)", testenv.PreflightImage, err)
	}
	logs, err := k.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(logs)
	state, _ := k.State(ctx)
	var m report.Matrix
	if err := json.Unmarshal(out[strings.IndexByte(string(out), '{'):], &m); err != nil || state == nil || state.ExitCode != 0 {
		t.Fatalf("exit %v, output:\n%s", state, out)
	}
	r := testenv.Result{Matrix: &m}
	wantStatuses(t, r, backupTarget, allPass)
	if d := testenv.Diff(before, testenv.Snapshot(t, mc, bucket)); d != "" {
		t.Errorf("the run changed the bucket:\n%s", d)
	}
}
