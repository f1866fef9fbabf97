package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Server modes of the integration suite.
const (
	ModeContainers = "containers" // MinIO and Azurite as containers (testcontainers-go)
	ModeProcesses  = "processes"  // everything as plain processes from scripts/servers.sh
)

// Image names are settings; the defaults are the official images at pinned tags, which
// `make images` builds locally from the pinned binaries when no registry can be reached.
func image(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

var (
	MinIOImage     = image("CNPG_PREFLIGHT_MINIO_IMAGE", "minio/minio:RELEASE.2026-02-12T20-18-48Z")
	AzuriteImage   = image("CNPG_PREFLIGHT_AZURITE_IMAGE", "mcr.microsoft.com/azure-storage/azurite:3.35.0")
	PreflightImage = image("CNPG_PREFLIGHT_IMAGE", "cnpg-preflight:dev")
)

// ServerMode is CNPG_PREFLIGHT_SERVER_MODE, or containers when a Docker engine answers.
func ServerMode() string {
	switch m := os.Getenv("CNPG_PREFLIGHT_SERVER_MODE"); m {
	case ModeContainers, ModeProcesses:
		return m
	}
	if DockerAnswers() {
		return ModeContainers
	}
	return ModeProcesses
}

// DockerAnswers reports whether a Docker engine (DOCKER_HOST or the default socket) responds.
func DockerAnswers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").Run() == nil
}

// Containers are the servers started as containers; Stop terminates all of them.
type Containers struct {
	list []testcontainers.Container
}

// Stop terminates and removes every container (Ryuk is disabled: nothing else would).
func (c *Containers) Stop() {
	for _, k := range c.list {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		testcontainers.TerminateContainer(k, testcontainers.StopContext(ctx))
		cancel()
	}
}

func (c *Containers) start(ctx context.Context, req testcontainers.ContainerRequest, port string) (string, error) {
	k, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	if k != nil {
		c.list = append(c.list, k)
	}
	if err != nil {
		return "", fmt.Errorf("container %s: %w", req.Image, err)
	}
	p, err := k.MappedPort(ctx, port)
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + p.Port(), nil
}

// StartContainers starts MinIO (HTTP and TLS) and Azurite (HTTP and HTTPS) containers and
// returns the servers.env values that point at them instead of the processes.
func StartContainers(ctx context.Context, env map[string]string) (*Containers, map[string]string, error) {
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true") // its image cannot be pulled here
	c := &Containers{}
	tlsDir := filepath.Dir(env["TLS_CA"])
	cert, key := filepath.Join(tlsDir, "minio", "public.crt"), filepath.Join(tlsDir, "minio", "private.key")
	creds := map[string]string{"MINIO_ROOT_USER": env["MINIO_ROOT_USER"], "MINIO_ROOT_PASSWORD": env["MINIO_ROOT_PASSWORD"], "MINIO_BROWSER": "off"}
	out := map[string]string{}
	minio := testcontainers.ContainerRequest{Image: MinIOImage, ExposedPorts: []string{"9000/tcp"}, Env: creds, Cmd: []string{"server", "/data"},
		// log-based waits: port waits exec /bin/sh inside the container, which images from scratch lack
		WaitingFor: wait.ForLog("API:").WithStartupTimeout(60 * time.Second)}
	addr, err := c.start(ctx, minio, "9000/tcp")
	if err != nil {
		return c, nil, err
	}
	out["MINIO_ENDPOINT"] = "http://" + addr
	minioTLS := minio
	minioTLS.Cmd = []string{"server", "/data", "--certs-dir", "/certs"}
	minioTLS.Files = []testcontainers.ContainerFile{{HostFilePath: cert, ContainerFilePath: "/certs/public.crt", FileMode: 0o644}, {HostFilePath: key, ContainerFilePath: "/certs/private.key", FileMode: 0o644}}
	if addr, err = c.start(ctx, minioTLS, "9000/tcp"); err != nil {
		return c, nil, err
	}
	out["MINIO_TLS_ENDPOINT"] = "https://" + addr
	azArgs := []string{"azurite-blob", "--blobHost", "0.0.0.0", "--blobPort", "10000", "--location", "/data", "--skipApiVersionCheck", "--loose", "--disableTelemetry"}
	az := testcontainers.ContainerRequest{Image: AzuriteImage, ExposedPorts: []string{"10000/tcp"}, Cmd: azArgs, WaitingFor: wait.ForLog("successfully listens").WithStartupTimeout(60 * time.Second)}
	if addr, err = c.start(ctx, az, "10000/tcp"); err != nil {
		return c, nil, err
	}
	out["AZURITE_ENDPOINT"] = "http://" + addr
	azTLS := az
	azTLS.Cmd = append(append([]string{}, azArgs...), "--cert", "/certs/cert.pem", "--key", "/certs/key.pem")
	azTLS.Files = []testcontainers.ContainerFile{{HostFilePath: cert, ContainerFilePath: "/certs/cert.pem", FileMode: 0o644}, {HostFilePath: key, ContainerFilePath: "/certs/key.pem", FileMode: 0o644}}
	if addr, err = c.start(ctx, azTLS, "10000/tcp"); err != nil {
		return c, nil, err
	}
	out["AZURITE_TLS_ENDPOINT"] = "https://" + addr
	// Both listen before they serve: wait for real answers.
	for _, u := range []string{out["MINIO_ENDPOINT"] + "/minio/health/live", out["AZURITE_ENDPOINT"] + "/"} {
		if err := waitHTTP(u); err != nil {
			return c, nil, err
		}
	}
	// The restricted users of the permission scenarios, on the container MinIO.
	root := filepath.Join(filepath.Dir(callerFile()), "..", "..")
	mcDir, _ := os.MkdirTemp("", "pf-mc-")
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "minio-users.sh"), out["MINIO_ENDPOINT"], env["MINIO_ROOT_USER"], env["MINIO_ROOT_PASSWORD"])
	cmd.Env = append(os.Environ(), "MC_CONFIG_DIR="+mcDir)
	if b, err := cmd.CombinedOutput(); err != nil {
		return c, nil, fmt.Errorf("minio users: %v\n%s", err, b)
	}
	return c, out, nil
}

func waitHTTP(u string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s does not answer", u)
}

func callerFile() string { f, _ := callerDir(); return f }

// RewriteEnv writes a copy of the servers.env at path with overrides, and returns its path.
func RewriteEnv(path string, overrides map[string]string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, _, _ := strings.Cut(l, "=")
		if v, ok := overrides[k]; ok {
			l = k + "=" + v
		}
		lines = append(lines, l)
	}
	f, err := os.CreateTemp("", "pf-servers-*.env")
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
	return f.Name(), err
}
