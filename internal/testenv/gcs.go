package testenv

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"testing"
)

// GCS is an independent client of the GCS JSON API (plain HTTP, no SDK) on the emulator.
type GCS struct {
	Base   string // http://host:port
	Bucket string
}

// NewGCSBucket creates a fresh bucket on the emulator; it is deleted (with its objects) at the end.
func NewGCSBucket(t testing.TB, host string) *GCS {
	t.Helper()
	return NewGCSBucketWith(t, host, nil)
}

// NewGCSBucketWith creates a fresh bucket with more of the JSON API's bucket fields (e.g.
// "defaultEventBasedHold": true, "versioning": {"enabled": true}); deleted at the end.
func NewGCSBucketWith(t testing.TB, host string, attrs map[string]any) *GCS {
	t.Helper()
	g := &GCS{Base: "http://" + host, Bucket: Unique("pf-")}
	fields := map[string]any{"name": g.Bucket}
	for k, v := range attrs {
		fields[k] = v
	}
	body, _ := json.Marshal(fields)
	g.do(t, "POST", "/storage/v1/b?project=test", body, http.StatusOK)
	t.Cleanup(func() {
		for k := range g.Snapshot(t) {
			g.Delete(t, k)
		}
		req, _ := http.NewRequest("DELETE", g.Base+"/storage/v1/b/"+g.Bucket, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	return g
}

func (g *GCS) do(t testing.TB, method, path string, body []byte, want int) []byte {
	t.Helper()
	req, err := http.NewRequest(method, g.Base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("gcs %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want && !(want == http.StatusOK && resp.StatusCode == http.StatusNoContent) {
		t.Fatalf("gcs %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b
}

// Put uploads an object (media upload).
func (g *GCS) Put(t testing.TB, name string, data []byte) {
	t.Helper()
	g.do(t, "POST", "/upload/storage/v1/b/"+g.Bucket+"/o?uploadType=media&name="+url.QueryEscape(name), data, http.StatusOK)
}

// Delete removes an object.
func (g *GCS) Delete(t testing.TB, name string) {
	t.Helper()
	g.do(t, "DELETE", "/storage/v1/b/"+g.Bucket+"/o/"+url.PathEscape(name), nil, http.StatusOK)
}

// Snapshot lists every object (name → generation).
func (g *GCS) Snapshot(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	token := ""
	for {
		var page struct {
			Items []struct {
				Name       string `json:"name"`
				Generation string `json:"generation"`
			} `json:"items"`
			NextPageToken string `json:"nextPageToken"`
		}
		path := "/storage/v1/b/" + g.Bucket + "/o"
		if token != "" {
			path += "?pageToken=" + url.QueryEscape(token)
		}
		if err := json.Unmarshal(g.do(t, "GET", path, nil, http.StatusOK), &page); err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			out[it.Name] = it.Generation
		}
		if page.NextPageToken == "" {
			return out
		}
		token = page.NextPageToken
	}
}

// ServiceAccountJSON returns a syntactically valid service-account key with a fresh RSA key.
func ServiceAccountJSON(t testing.TB, email string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	b, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "test", "private_key_id": "1", "private_key": pemKey,
		"client_email": email, "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"})
	return string(b)
}
