// Command seed creates the demo's Azurite container and GCS emulator bucket (make demo).
// Usage: go run ./internal/seed AZURITE_ENDPOINT ACCOUNT KEY CONTAINER GCS_HOST BUCKET
package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(a []string) error {
	if len(a) != 6 {
		return fmt.Errorf("want 6 arguments, got %d", len(a))
	}
	cred, err := container.NewSharedKeyCredential(a[1], a[2])
	if err != nil {
		return err
	}
	c, err := container.NewClientWithSharedKeyCredential(a[0]+"/"+a[1]+"/"+a[3], cred, nil)
	if err != nil {
		return err
	}
	if _, err := c.Create(context.Background(), nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("azure container: %w", err)
	}
	resp, err := http.Post("http://"+a[4]+"/storage/v1/b?project=demo", "application/json", bytes.NewReader([]byte(`{"name":"`+a[5]+`"}`)))
	if err != nil {
		return fmt.Errorf("gcs bucket: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusConflict {
		return fmt.Errorf("gcs bucket: %s", resp.Status)
	}
	return nil
}
