package main

import (
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// hostileStreams runs the tool against fake endpoints that stream without end, lie about sizes or
// page forever, and records the time to the verdict and the peak RSS of each run (the README's
// "Hostile conditions" promise: a verdict within --timeout + 1 s and at most 100 MiB).
func hostileStreams(bin, tmp string) []stat {
	const timeout = "10s"
	junk := []byte(strings.Repeat("<Contents><Key>junk</Key><Size>1</Size></Contents>", 1000))
	cases := []struct {
		name string
		mode func(w http.ResponseWriter, r *http.Request) bool // true: answered
		conf func(endpoint string) string
	}{
		{"endless GetObject body (the read-back)", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "cnpg-preflight-probe-") {
				stream(w, r, junk)
				return true
			}
			return false
		}, s3Conf},
		{"endless 500 error body", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2" {
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, "<Error><Code>InternalError</Code><Message>")
				stream(w, r, junk)
				return true
			}
			return false
		}, s3Conf},
		{"endless ListObjectsV2 document", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Query().Get("list-type") == "2" {
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name>`)
				stream(w, r, junk)
				return true
			}
			return false
		}, s3Conf},
		{"IsTruncated forever", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Query().Get("list-type") == "2" {
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated><NextContinuationToken>t</NextContinuationToken>%s</ListBucketResult>`, junk)
				return true
			}
			return false
		}, s3Conf},
		{"gzip bomb listing (S3)", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Query().Get("list-type") == "2" {
				gzipBomb(w, r, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name>`)
				return true
			}
			return false
		}, s3Conf},
		{"gzip bomb listing (Azure)", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Query().Get("comp") == "list" {
				gzipBomb(w, r, `<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs>`)
				return true
			}
			return false
		}, azureConf},
		{"listed as 1 byte, endless GET (source)", func(w http.ResponseWriter, r *http.Request) bool {
			switch {
			case r.URL.Query().Get("list-type") == "2":
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><Contents><Key>%sbase/x/backup.info</Key><Size>1</Size></Contents></ListBucketResult>`, r.URL.Query().Get("prefix"))
				return true
			case r.Method == http.MethodGet:
				stream(w, r, junk)
				return true
			}
			return false
		}, sourceConf},
	}
	var out []stat
	for _, c := range cases {
		endpoint := fakeStore(c.mode)
		path := filepath.Join(tmp, "hostile.yaml")
		os.WriteFile(path, []byte(c.conf(endpoint)), 0o644)
		s := measure([]string{bin, "check", "-f", path, "-o", "json", "--timeout", timeout}, nil)
		st := summarize(c.name, []sample{s})
		st.Note = "--timeout " + timeout
		out = append(out, st)
	}
	return out
}

func stream(w http.ResponseWriter, r *http.Request, chunk []byte) {
	for r.Context().Err() == nil {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

func gzipBomb(w http.ResponseWriter, r *http.Request, head string) {
	w.Header().Set("Content-Encoding", "gzip")
	zw := gzip.NewWriter(w)
	io.WriteString(zw, head)
	zeros := make([]byte, 1<<20)
	for r.Context().Err() == nil {
		if _, err := zw.Write(zeros); err != nil {
			return
		}
	}
}

// fakeStore is a minimal S3 (and Azure list) endpoint: mode answers first; everything else
// succeeds the way a store would.
func fakeStore(mode func(w http.ResponseWriter, r *http.Request) bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		if mode(w, r) {
			return
		}
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodPost && q.Has("uploads"):
			io.WriteString(w, `<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>`)
		case r.Method == http.MethodPost && q.Has("uploadId"):
			io.WriteString(w, `<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"e"</ETag></CompleteMultipartUploadResult>`)
		case r.Method == http.MethodPut:
			io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
			w.Header().Set("ETag", `"e"`)
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodHead && strings.Count(strings.Trim(r.URL.Path, "/"), "/") > 0:
			w.WriteHeader(http.StatusNotFound)
		case q.Get("list-type") == "2":
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name></ListBucketResult>`)
		}
	}))
	return "http://" + ln.Addr().String()
}

func s3Conf(endpoint string) string {
	return fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: bench}
spec:
  backup:
    barmanObjectStore:
      destinationPath: s3://b/p
      endpointURL: %s
      s3Credentials:
        accessKeyId: {name: c, key: id}
        secretAccessKey: {name: c, key: secret}
---
apiVersion: v1
kind: Secret
metadata: {name: c, namespace: bench}
stringData: {id: key, secret: secret}
`, endpoint)
}

func sourceConf(endpoint string) string {
	return strings.Replace(s3Conf(endpoint), "  backup:\n    barmanObjectStore:\n", "  bootstrap:\n    recovery: {source: origin}\n  externalClusters:\n  - name: origin\n    barmanObjectStore:\n", 1)
}

func azureConf(endpoint string) string {
	return fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg, namespace: bench}
spec:
  backup:
    barmanObjectStore:
      destinationPath: %s/devstoreaccount1/c/p
      azureCredentials:
        connectionString: {name: c, key: cs}
---
apiVersion: v1
kind: Secret
metadata: {name: c, namespace: bench}
stringData:
  cs: "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=%s/devstoreaccount1;"
`, endpoint, endpoint)
}
