// Package s3 is the provider for AWS S3 and S3-compatible stores (MinIO, versitygw, Ceph, …),
// on aws-sdk-go-v2. It resolves credentials and addressing the way boto3 does under barman-cloud.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cnpg-preflight/cnpg-preflight/manifest"
	"github.com/cnpg-preflight/cnpg-preflight/providers"
)

// Driver is the S3 provider.
type Driver struct{}

// Info describes the provider.
func (Driver) Info() providers.Info {
	return providers.Info{Name: "s3", CredentialsField: "s3Credentials", Scheme: "s3://", DestinationForm: "s3://BUCKET/PATH", BucketNoun: "bucket",
		IdentityAnnotation: "eks.amazonaws.com/role-arn", IdentityName: "an IAM role (IRSA)", TLS: providers.Trust{Client: "botocore"}, Proxy: providers.ProxyBotocore}
}

// Serves: barman-cloud sends s3:// destinations to boto3.
func (Driver) Serves(destinationPath string) bool { return strings.HasPrefix(destinationPath, "s3://") }

// Credentials reads s3Credentials.
func (Driver) Credentials(c *manifest.BarmanObjectStore) providers.Credentials {
	cr := c.S3Credentials
	if cr == nil {
		return providers.Credentials{}
	}
	out := providers.Credentials{Set: true, Refs: providers.Refs(cr.AccessKeyID, cr.SecretAccessKey, cr.Region, cr.SessionToken)}
	if cr.InheritFromIAMRole {
		out.PodIdentity = "s3Credentials.inheritFromIAMRole"
	}
	return out
}

// PutOptions: barman-cloud sends server-side encryption (wal.encryption, else data.encryption)
// and the configured tags on every upload.
func (Driver) PutOptions(c *manifest.BarmanObjectStore) providers.PutOptions {
	o := providers.PutOptions{Tags: c.Tags}
	if o.Encryption = walEnc(c); o.Encryption == "" {
		o.Encryption = dataEnc(c)
	}
	return o
}

// equalPartHosts are endpoint host suffixes of stores known to refuse multipart uploads whose
// non-trailing parts differ in size (Cloudflare R2).
var equalPartHosts = []string{".r2.cloudflarestorage.com"}

// DefaultRegion is the region boto3 signs with when none is configured.
const DefaultRegion = "us-east-1"

// Validate parses an s3:// destinationPath and endpointURL and applies CNPG's S3 credential rules.
func (Driver) Validate(t *providers.Target) (providers.Location, []providers.Finding) {
	c := t.Conf
	var fs []providers.Finding
	loc := providers.Location{Provider: "s3", ServerName: t.ServerName}
	dp := t.F("destinationPath")
	u, err := url.Parse(c.DestinationPath)
	switch {
	case err != nil:
		fs = append(fs, providers.Failf(dp, "use the form s3://BUCKET/PATH", "not a valid URL: %q", c.DestinationPath))
	case u.Scheme != "s3":
		fs = append(fs, providers.Failf(dp, "use the form s3://BUCKET/PATH", "scheme must be s3://, got %q", c.DestinationPath))
	case u.Host == "":
		fs = append(fs, providers.Failf(dp, "use the form s3://BUCKET/PATH", "no bucket in %q", c.DestinationPath))
	default:
		loc.Bucket = u.Host
		loc.Prefix = strings.TrimLeft(u.Path, "/") // barman: urlparse(url).path.lstrip("/")
		if u.RawQuery != "" || u.Fragment != "" {
			fs = append(fs, providers.Failf(dp, "remove the ?query or #fragment", "destinationPath carries a query or fragment, which barman-cloud would take as part of the key"))
		}
		if strings.Contains(strings.TrimSuffix(u.Path, "/"), "//") || strings.HasPrefix(u.Path, "//") {
			fs = append(fs, providers.Warnf(dp, "remove the repeated slash", "double slash in the path: barman-cloud keeps it, so objects go under %q, which most browsers and tools show as an empty folder name", loc.Prefix))
		}
		if strings.ToLower(loc.Bucket) != loc.Bucket || strings.Contains(loc.Bucket, "_") {
			fs = append(fs, providers.Warnf(dp, "use a bucket name of lower-case letters, digits, dots and hyphens", "bucket name %q is not a valid S3 bucket name on AWS", loc.Bucket))
		}
	}

	ep := t.F("endpointURL")
	if c.EndpointURL != "" {
		e, err := url.Parse(c.EndpointURL)
		switch {
		case err != nil || e.Host == "" || (e.Scheme != "http" && e.Scheme != "https"):
			fs = append(fs, providers.Failf(ep, "write the endpoint as https://HOST[:PORT] (or http:// for a plain-HTTP store)", "%q is not an http:// or https:// URL: barman-cloud (boto3) rejects it", c.EndpointURL))
		default:
			loc.Endpoint = &url.URL{Scheme: e.Scheme, Host: e.Host}
			path := strings.Trim(e.Path, "/")
			if e.RawQuery != "" {
				fs = append(fs, providers.Failf(ep, "remove the query string from endpointURL", "endpointURL carries a query string (%q)", "?"+e.RawQuery))
			}
			switch {
			case path != "" && loc.Bucket != "" && (path == loc.Bucket || strings.HasPrefix(path, loc.Bucket+"/")):
				fs = append(fs, providers.Failf(ep, fmt.Sprintf("set endpointURL to %s://%s and keep the bucket only in destinationPath", e.Scheme, e.Host), "the bucket %q is repeated in the endpoint's path: requests would go to /%s/%s/…", loc.Bucket, path, loc.Bucket))
			case path != "":
				fs = append(fs, providers.Failf(ep, fmt.Sprintf("set endpointURL to %s://%s", e.Scheme, e.Host), "endpointURL has a path (%q); S3 endpoints are scheme://host[:port]", "/"+path))
			}
			if loc.Bucket != "" && strings.HasPrefix(strings.ToLower(e.Hostname()), strings.ToLower(loc.Bucket)+".") {
				fs = append(fs, providers.Warnf(ep, fmt.Sprintf("set endpointURL to %s://%s", e.Scheme, strings.TrimPrefix(e.Host, loc.Bucket+".")), "the bucket %q is repeated in the endpoint's host: with endpointURL barman-cloud uses path-style requests, so keys land under %q inside the bucket", loc.Bucket, loc.Bucket+"/"))
			}
		}
	}

	if loc.Endpoint != nil && c.Data != nil && c.Data.Compression == "snappy" {
		for _, h := range equalPartHosts {
			if strings.HasSuffix(strings.ToLower(loc.Endpoint.Hostname()), h) {
				fs = append(fs, providers.Warnf(t.F("data.compression"), "use data.compression gzip or bzip2, whose multipart parts are equal",
					"%s requires non-trailing multipart parts of equal size; with snappy, barman-cloud-backup's parts differ, so base backups larger than one chunk (20.5 MiB) fail (check --deep probes it)", loc.Endpoint.Hostname()))
			}
		}
	}
	cr := c.S3Credentials
	cf := t.F("s3Credentials")
	if cr == nil {
		fs = append(fs, providers.Failf(cf, "add s3Credentials (accessKeyId + secretAccessKey, or inheritFromIAMRole: true)", "an s3:// destination needs s3Credentials"))
		cr = &manifest.S3Credentials{InheritFromIAMRole: true} // nothing more to say about it
	}
	keyID, secret := cr.AccessKeyID != nil, cr.SecretAccessKey != nil
	const both = "when using AWS credentials both accessKeyId and secretAccessKey must be provided"
	switch {
	case cr.InheritFromIAMRole && (keyID || secret):
		reason := "only one AWS authentication method should be supplied"
		if keyID != secret {
			reason += "; " + both
		}
		fs = append(fs, t.CredentialRule(cf, "remove accessKeyId/secretAccessKey or inheritFromIAMRole", "inheritFromIAMRole is set together with accessKeyId/secretAccessKey", reason,
			providers.Warnf("", "", "inheritFromIAMRole wins at run time: CNPG passes no key to barman-cloud, which uses the Pod's identity")))
	case cr.InheritFromIAMRole:
	case !keyID && !secret:
		fs = append(fs, t.CredentialRule(cf, "add accessKeyId and secretAccessKey references, or inheritFromIAMRole: true", "neither accessKeyId/secretAccessKey nor inheritFromIAMRole is set",
			"at least one AWS authentication method should be supplied", providers.Failf("", "", `at run time CNPG stops with "missing access key ID"`)))
	case !keyID:
		fs = append(fs, t.CredentialRule(cf+".accessKeyId", "add the accessKeyId Secret reference", "secretAccessKey is set but accessKeyId is missing", both,
			providers.Failf("", "", `at run time CNPG stops with "missing access key ID"`)))
	case !secret:
		fs = append(fs, t.CredentialRule(cf+".secretAccessKey", "add the secretAccessKey Secret reference", "accessKeyId is set but secretAccessKey is missing", both,
			providers.Failf("", "", `at run time CNPG stops with "missing secret access key"`)))
	}
	if cr.InheritFromIAMRole && (cr.Region != nil || cr.SessionToken != nil) {
		fs = append(fs, providers.Warnf(cf, "set the region through the Pod's environment (AWS_REGION/AWS_DEFAULT_REGION injected by IRSA) instead", "with inheritFromIAMRole, CNPG ignores the region and sessionToken references"))
	}
	if c.EndpointURL == "" && loc.Bucket != "" {
		loc.Endpoint = &url.URL{Scheme: "https", Host: "s3.amazonaws.com"} // refined with the region in Connect
	}
	return loc, fs
}

func walEnc(c *manifest.BarmanObjectStore) string {
	if c.Wal == nil {
		return ""
	}
	return c.Wal.Encryption
}

func dataEnc(c *manifest.BarmanObjectStore) string {
	if c.Data == nil {
		return ""
	}
	return c.Data.Encryption
}

// CA returns the endpointCA bundle (boto3 gets it as AWS_CA_BUNDLE).
func (Driver) CA(ctx context.Context, t *providers.Target) ([]byte, []providers.Finding) {
	return providers.EndpointCA(ctx, t)
}

// Connect resolves credentials the way CNPG passes them to boto3 and opens a client.
func (Driver) Connect(ctx context.Context, t *providers.Target, loc providers.Location, n *providers.Net) (providers.Store, string, []providers.Finding) {
	c := t.Conf
	cr := c.S3Credentials
	var fs []providers.Finding
	red := &providers.Redactor{}
	opts := s3.Options{
		HTTPClient: n.Client,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 4
			o.MaxBackoff = 2 * time.Second
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
		// botocore sends "Expect: 100-continue" with every request body
		ContinueHeaderThresholdBytes: 1,
		// and streams aws-chunked bodies with Transfer-Encoding: chunked, not a Content-Length
		APIOptions: []func(*middleware.Stack) error{chunkedAWSChunked},
	}
	// boto3 ≥ 1.36 reads these from the environment the backup client runs with.
	if strings.EqualFold(t.Env["AWS_REQUEST_CHECKSUM_CALCULATION"], "when_required") {
		opts.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	}
	if strings.EqualFold(t.Env["AWS_RESPONSE_CHECKSUM_VALIDATION"], "when_required") {
		opts.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
	var identity string
	region := ""
	if cr.InheritFromIAMRole && t.Offline {
		return nil, "", []providers.Finding{providers.Warnf(t.F("s3Credentials.inheritFromIAMRole"), "", "pod identity not resolved (--offline)")}
	}
	if cr.InheritFromIAMRole {
		// The pod identity, as botocore's default chain finds it in a Pod.
		// the backup client's environment: in the Job it holds what the identity webhooks
		// injected into the Pod; from a laptop never the laptop's own AWS_* variables
		prov, source, err := podIdentity(func(k string) string { return t.Env[k] }, n.Client)
		if err != nil {
			return nil, "", []providers.Finding{providers.Failf(t.F("s3Credentials.inheritFromIAMRole"), "", "%s", err)}
		}
		cache := aws.NewCredentialsCache(prov)
		v, err := cache.Retrieve(ctx)
		if err != nil {
			fix := "run with the Cluster's ServiceAccount carrying the eks.amazonaws.com/role-arn annotation (IRSA), or attach an instance role"
			return nil, "", []providers.Finding{providers.Failf(t.F("s3Credentials.inheritFromIAMRole"), fix, "no AWS identity found through %s: %s", source, red.Redact(providers.FirstLine(err.Error())))}
		}
		red.Add(v.SecretAccessKey, v.SessionToken)
		identity = "pod identity via " + source
		opts.Credentials = cache
		// boto3's client region is AWS_DEFAULT_REGION (AWS_REGION alone does not set it)
		region = t.Env["AWS_DEFAULT_REGION"]
	} else {
		id, f1 := t.Ref(ctx, cr.AccessKeyID, "s3Credentials.accessKeyId")
		secret, f2 := t.Ref(ctx, cr.SecretAccessKey, "s3Credentials.secretAccessKey")
		token, f3 := t.Ref(ctx, cr.SessionToken, "s3Credentials.sessionToken")
		reg, f4 := t.Ref(ctx, cr.Region, "s3Credentials.region")
		for _, f := range []*providers.Finding{f1, f2, f3, f4} {
			if f != nil {
				fs = append(fs, *f)
			}
		}
		if len(fs) > 0 {
			return nil, "", fs
		}
		for _, v := range []struct {
			val  []byte
			name string
		}{{id, "accessKeyId"}, {secret, "secretAccessKey"}, {token, "sessionToken"}, {reg, "region"}} {
			if len(v.val) > 0 && strings.TrimSpace(string(v.val)) != string(v.val) {
				fs = append(fs, providers.Warnf(t.F("s3Credentials."+v.name), "recreate the Secret without the trailing newline (kubectl create secret --from-literal, or printf instead of echo)", "the value has leading or trailing white space (often a newline from echo); the backup client uses it as is"))
			}
		}
		red.Add(string(secret), string(token))
		opts.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(string(id), string(secret), string(token)))
		identity = "access key " + maskID(string(id))
		if len(token) > 0 {
			identity += " with session token"
			fs = append(fs, providers.Warnf(t.F("s3Credentials.sessionToken"), "rotate the Secret before the temporary credentials expire (automate it), or use a pod identity (inheritFromIAMRole with IRSA or EKS Pod Identity), which the SDK renews",
				"a static session token makes these temporary credentials: they expire (STS issues them for 15 minutes to 36 hours) and nothing renews a Secret; from then on barman-cloud fails with ExpiredToken"))
		}
		region = string(reg)
	}
	if region == "" {
		region = t.Env["AWS_DEFAULT_REGION"]
	}
	if region == "" {
		region = DefaultRegion
	}
	opts.Region = region
	custom := c.EndpointURL != ""
	if !custom {
		// botocore ≥ 1.31 takes the endpoint from the environment when none is configured
		if ep, name := envEndpoint(t.Env); ep != nil {
			loc.Endpoint, custom = ep, true
			identity += "; endpoint " + ep.String() + " from " + name + " in the backup client's environment"
		}
	}
	if custom {
		opts.BaseEndpoint = aws.String(loc.Endpoint.String())
		opts.UsePathStyle = true // boto3 uses path-style addressing with a custom endpoint_url
	}
	checksums := opts.RequestChecksumCalculation == aws.RequestChecksumCalculationWhenSupported
	st := &Store{loc: loc, red: red, opts: opts, custom: custom, checksums: checksums}
	st.setRegion(region)
	return st, identity, fs
}

// envEndpoint is the endpoint botocore reads from the environment (AWS_ENDPOINT_URL_S3, then
// AWS_ENDPOINT_URL) unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true.
func envEndpoint(env map[string]string) (*url.URL, string) {
	if strings.EqualFold(env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"], "true") {
		return nil, ""
	}
	for _, name := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		if v := env[name]; v != "" {
			if u, err := url.Parse(v); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
				return &url.URL{Scheme: u.Scheme, Host: u.Host}, name
			}
		}
	}
	return nil, ""
}

// setRegion (re)opens the client signing for region (and, on AWS, talking to its endpoint).
func (s *Store) setRegion(region string) {
	s.region, s.opts.Region = region, region
	s.c = s3.New(s.opts)
	s.endpoint = s.loc.Endpoint
	if !s.custom {
		host := "s3." + region + ".amazonaws.com"
		if !strings.Contains(s.loc.Bucket, ".") {
			host = s.loc.Bucket + "." + host
		}
		s.endpoint = &url.URL{Scheme: "https", Host: host}
	}
}

// chunkedAWSChunked sends an aws-chunked body (a checksum trailer) without Content-Length, with
// Transfer-Encoding: chunked, as botocore does: a store or proxy refusing chunked request bodies
// fails our probe as it fails barman-cloud.
func chunkedAWSChunked(stack *middleware.Stack) error {
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("cnpg-preflight:chunked", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		if req, ok := in.Request.(*smithyhttp.Request); ok && strings.Contains(req.Header.Get("Content-Encoding"), "aws-chunked") {
			req.ContentLength = -1
			req.Header.Del("Content-Length")
		}
		return next.HandleFinalize(ctx, in)
	}), "Signing", middleware.Before) // the length must not be signed
}

func maskID(id string) string {
	if len(id) <= 4 {
		return "****"
	}
	return id[:4] + strings.Repeat("*", min(len(id)-4, 12))
}

// Store is an S3 bucket.
type Store struct {
	c        *s3.Client
	opts     s3.Options // what c was made with
	custom   bool       // endpointURL is set (otherwise AWS, whose endpoint names the region)
	loc      providers.Location
	red      *providers.Redactor
	endpoint *url.URL
	region   string
	// checksums: boto3 ≥ 1.36 default (when_supported): multipart uploads declare CRC32 and
	// send per-part checksums, as s3transfer does.
	checksums bool
}

// Endpoint is the URL the client talks to.
func (s *Store) Endpoint() *url.URL { return s.endpoint }

// MinPartSize is S3's minimum size of a non-final part.
func (s *Store) MinPartSize() int { return 5 << 20 }

// CheckBucket does what barman-cloud does first: HeadBucket. A 403 is explained by one listing
// under the prefix (bad credentials, or a prefix-scoped policy without bucket-level ListBucket).
//
// When the store names another region (x-amz-bucket-region on a 301/400 answer), it does what
// botocore's region redirector does: sign once more for that region, and keep it. That succeeds,
// with a notice: every barman-cloud process (one per WAL archived) pays the extra round trip.
func (s *Store) CheckBucket(ctx context.Context) error {
	_, err := s.c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.loc.Bucket})
	if err == nil {
		return nil
	}
	e := s.classify("HeadBucket", err)
	if to := redirectRegion(err); to != "" && to != s.region && (e.Kind == providers.KindRegion || e.Status == http.StatusBadRequest) {
		from := s.region
		s.setRegion(to)
		if _, err2 := s.c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.loc.Bucket}); err2 == nil {
			return &providers.Notice{
				Msg: fmt.Sprintf("the bucket is in %s, requests were signed for %s: like botocore, signed again for %s and reached it; barman-cloud pays that extra round trip in every process (each archived WAL)", to, from, to),
				Fix: fmt.Sprintf("set s3Credentials.region to a Secret key holding %q (or AWS_DEFAULT_REGION=%s in the backup client's environment)", to, to)}
		} else {
			// botocore redirects once: the store's first answer, and what the second said
			e2 := s.classify("HeadBucket", err2)
			s.setRegion(from)
			e.Msg += fmt.Sprintf("; signed again for %s (as botocore does), it still answers %s", to, e2.Msg)
			if e.Fix == "" {
				e.Fix = e2.Fix
			}
			return e
		}
	}
	if e.Status != http.StatusForbidden && e.Status != http.StatusBadRequest && e.Status != http.StatusMovedPermanently {
		return e
	}
	prefix := s.loc.Base()
	_, lerr := s.c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.loc.Bucket, Prefix: &prefix, MaxKeys: aws.Int32(1)})
	if lerr == nil {
		if e.Status == http.StatusForbidden {
			e.Kind = providers.KindDenied
			e.Msg = fmt.Sprintf("HeadBucket on %q is denied (403) although listing under %q is allowed: barman-cloud checks the bucket with HeadBucket and stops there", s.loc.Bucket, prefix)
			e.Fix = fmt.Sprintf("grant s3:ListBucket on arn:aws:s3:::%s without an s3:prefix condition (HeadBucket needs it)", s.loc.Bucket)
		}
		return e
	}
	le := s.classify("ListObjectsV2", lerr)
	switch le.Kind {
	case providers.KindAuth, providers.KindRegion:
		le.Op = "HeadBucket"
		le.Msg = fmt.Sprintf("HeadBucket: %d %s; %s", e.Status, http.StatusText(e.Status), le.Msg)
		return le
	case providers.KindDenied:
		e.Kind = providers.KindDenied
		e.Msg = fmt.Sprintf("HeadBucket on %q: 403 Forbidden (AccessDenied): the identity may not list the bucket", s.loc.Bucket)
		e.Fix = fmt.Sprintf("grant s3:ListBucket on arn:aws:s3:::%s (without an s3:prefix condition)", s.loc.Bucket)
	}
	return e
}

// List lists keys under prefix, following pages up to max keys.
func (s *Store) List(ctx context.Context, prefix, delimiter string, max int) (providers.Listing, error) {
	var out providers.Listing
	in := &s3.ListObjectsV2Input{Bucket: &s.loc.Bucket, Prefix: &prefix}
	if delimiter != "" {
		in.Delimiter = &delimiter
	}
	if max > 0 && max < 1000 {
		in.MaxKeys = aws.Int32(int32(max))
	}
	p := s3.NewListObjectsV2Paginator(s.c, in)
	for pages := 0; p.HasMorePages(); pages++ {
		if pages == providers.ListPages(max, 1000) {
			out.Truncated = true
			break
		}
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, s.classify("ListObjectsV2", err)
		}
		for _, o := range page.Contents {
			out.Keys = append(out.Keys, providers.Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)})
		}
		for _, cp := range page.CommonPrefixes {
			out.Prefixes = append(out.Prefixes, aws.ToString(cp.Prefix))
		}
		if out.Clip(max, p.HasMorePages()) {
			break
		}
	}
	return out, nil
}

// Put writes one object with the headers barman would send (server-side encryption, tags).
func (s *Store) Put(ctx context.Context, key string, data []byte, o providers.PutOptions) error {
	in := &s3.PutObjectInput{Bucket: &s.loc.Bucket, Key: &key, Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))}
	if s.checksums {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32 // s3transfer sets it explicitly (x-amz-sdk-checksum-algorithm)
	}
	if o.Encryption != "" {
		in.ServerSideEncryption = types.ServerSideEncryption(o.Encryption)
	}
	if len(o.Tags) > 0 {
		in.Tagging = aws.String(tagging(o.Tags))
	}
	_, err := s.c.PutObject(ctx, in)
	return providers.Classifier(s.classify).Err("PutObject", err)
}

func tagging(tags map[string]string) string {
	v := url.Values{}
	for k, val := range tags {
		v.Set(k, val)
	}
	return v.Encode()
}

// Get reads the first limit bytes of one object with a ranged GetObject.
func (s *Store) Get(ctx context.Context, key string, limit int64) ([]byte, error) {
	rng := fmt.Sprintf("bytes=0-%d", limit-1)
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.loc.Bucket, Key: &key, Range: &rng})
	if err != nil {
		e := s.classify("GetObject", err)
		if e.Status == http.StatusRequestedRangeNotSatisfiable {
			return nil, nil // an empty object has no byte 0
		}
		return nil, e
	}
	defer out.Body.Close()
	b, err := providers.ReadAll(out.Body, limit)
	if err != nil {
		return nil, s.classify("GetObject", err)
	}
	return b, nil
}

// Delete deletes one object.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.loc.Bucket, Key: &key})
	return providers.Classifier(s.classify).Err("DeleteObject", err)
}

// DeleteBatch deletes keys the way barman-cloud's retention does: DeleteObjects (Quiet), whose
// request carries a CRC32 checksum and no Content-MD5 with boto3 ≥ 1.36. A key the store could not
// delete (an Errors entry of the answer) is an error too.
func (s *Store) DeleteBatch(ctx context.Context, keys []string) error {
	objs := make([]types.ObjectIdentifier, len(keys))
	for i := range keys {
		objs[i] = types.ObjectIdentifier{Key: &keys[i]}
	}
	out, err := s.c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &s.loc.Bucket, Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)}})
	if err != nil {
		e := s.classify("DeleteObjects", err)
		e.Fallback = md5Fallback(e.Code, e.Msg)
		return e
	}
	for _, e := range out.Errors {
		code, msg := aws.ToString(e.Code), aws.ToString(e.Message)
		pe := &providers.Error{Op: "DeleteObjects", Code: code, Kind: providers.KindOther, Msg: s.red.Redact(fmt.Sprintf("DeleteObjects: %s could not be deleted (%s: %s)", aws.ToString(e.Key), code, msg))}
		if deniedCodes[code] {
			pe.Kind, pe.Fix = providers.KindDenied, s.fixFor("DeleteObject", providers.KindDenied)
		}
		return pe
	}
	return nil
}

// redirectRegion is the region an S3 answer names (x-amz-bucket-region), as botocore reads it.
func redirectRegion(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.Header.Get("X-Amz-Bucket-Region")
	}
	return ""
}

// md5Fallback says which barman-cloud versions retry a DeleteObjects refused for a missing
// Content-MD5 (boto3 ≥ 1.36 sends a CRC32 instead) with single DeleteObject calls.
func md5Fallback(code, msg string) string {
	m := strings.ToLower(msg)
	switch {
	case code == "MissingContentMD5":
		return "barman-cloud ≥ 3.16.0 falls back to single deletes on MissingContentMD5"
	case strings.Contains(m, "missing required header for this request: content-md5"):
		return "barman-cloud ≥ 3.16.2 falls back to single deletes on this answer"
	case strings.Contains(m, "content-md5"):
		return "barman-cloud ≥ 3.17.0 falls back to single deletes on an answer naming Content-MD5"
	}
	return ""
}

// Exists reports whether key exists.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	_, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.loc.Bucket, Key: &key})
	if err == nil {
		return true, nil
	}
	e := s.classify("HeadObject", err)
	if e.Kind == providers.KindNotFound {
		return false, nil
	}
	return false, e
}

// MaxParts is the highest part number S3 accepts; barman-cloud sizes its chunks for it.
const MaxParts = 10000

// StartMultipart creates a multipart upload the way barman-cloud-backup does (no checksum algorithm
// on the create, CRC32 on each part with boto3 ≥ 1.36) and uploads the parts concurrently. The
// last part gets part number 10,000, S3's highest: a store allowing fewer parts refuses it, and
// barman-cloud would fail once a tar file needs more parts than it allows.
func (s *Store) StartMultipart(ctx context.Context, key string, parts [][]byte, o providers.PutOptions) (providers.Upload, error) {
	in := &s3.CreateMultipartUploadInput{Bucket: &s.loc.Bucket, Key: &key}
	if o.Encryption != "" {
		in.ServerSideEncryption = types.ServerSideEncryption(o.Encryption)
	}
	if len(o.Tags) > 0 {
		in.Tagging = aws.String(tagging(o.Tags))
	}
	up, err := s.c.CreateMultipartUpload(ctx, in)
	if err != nil {
		e := s.classify("CreateMultipartUpload", err)
		switch e.Kind {
		case providers.KindNetwork, providers.KindTimeout, providers.KindCanceled, providers.KindOther:
			// The store may have created it without us learning its ID: Abort looks it up by key.
			return &upload{s: s, key: key}, e
		}
		return nil, e
	}
	u := &upload{s: s, key: key, id: up.UploadId, parts: make([]types.CompletedPart, len(parts))}
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		num := int32(i + 1)
		if i == len(parts)-1 && i > 0 {
			num = MaxParts
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := &s3.UploadPartInput{Bucket: &s.loc.Bucket, Key: &key, UploadId: up.UploadId, PartNumber: &num, Body: bytes.NewReader(p), ContentLength: aws.Int64(int64(len(p)))}
			if s.checksums {
				in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
			}
			res, err := s.c.UploadPart(ctx, in)
			if err != nil {
				e := s.classify("UploadPart", err)
				if num == MaxParts && e.Status == http.StatusBadRequest {
					e.Msg += fmt.Sprintf("; part number %d is refused: %s", MaxParts, partLimitNote)
					e.Fix = fmt.Sprintf("raise the store's part limit to %d, or make barman-cloud-backup cut tar files that fit (data.additionalCommandArgs: [\"--max-archive-size=4GB\"] keeps 5 MiB chunks within 1,000 parts)", MaxParts)
				}
				errs[i] = e
				return
			}
			// barman completes with part numbers and ETags only (no part checksums)
			u.parts[i] = types.CompletedPart{ETag: res.ETag, PartNumber: &num}
		}()
	}
	wg.Wait()
	var first *providers.Error
	for _, e := range errs {
		if e != nil && first == nil {
			first = e.(*providers.Error)
		}
	}
	if first == nil {
		return u, nil
	}
	if ctx.Err() != nil {
		return u, first // the run is over: cleanup aborts it within its budget
	}
	if aerr := u.Abort(ctx); aerr != nil {
		first.Msg = fmt.Sprintf("%s; and the upload could not be aborted: %s (upload id %s is left incomplete)", first.Msg, aerr.Error(), aws.ToString(u.id))
		return u, first
	}
	return nil, first
}

// partLimitNote explains what a part limit means for barman-cloud-backup's default sizes.
var partLimitNote = fmt.Sprintf("barman-cloud-backup uploads each tar file (at most --max-archive-size, default 100 GiB) in chunks of %.1f MiB by default, up to %d parts; a store that allows only 1,000 parts fails once a tar file passes %.1f GiB",
	float64(DefaultChunkSize)/(1<<20), MaxParts, float64(1000*DefaultChunkSize)/(1<<30))

// DefaultChunkSize is barman-cloud-backup's S3 chunk size with its default --max-archive-size
// (100 GiB): 2 × 100 GiB / 10,000, at least 5 MiB.
const DefaultChunkSize = 2 * ((100 << 30) / MaxParts)

// Describe says what the multipart probe proved about barman's uploads.
func (u *upload) Describe() string {
	return fmt.Sprintf("part number %d accepted: barman's default %.1f MiB chunks can carry a tar file of up to 100 GiB (--max-archive-size)", MaxParts, float64(DefaultChunkSize)/(1<<20))
}

type upload struct {
	s     *Store
	key   string
	id    *string
	parts []types.CompletedPart
	// cutShort: a CompleteMultipartUpload went unanswered; it may still run on the store
	cutShort bool
}

// Complete assembles the parts (on failure the caller aborts).
func (u *upload) Complete(ctx context.Context) error {
	_, err := u.s.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &u.s.loc.Bucket, Key: &u.key, UploadId: u.id, MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts}})
	e := providers.Classifier(u.s.classify).Err("CompleteMultipartUpload", err)
	var pe *providers.Error
	u.cutShort = e != nil && (!errors.As(e, &pe) || pe.Status == 0 || pe.Status >= 500)
	return e
}

// Confirmed reports whether the store acknowledged the upload's creation.
func (u *upload) Confirmed() bool { return u.id != nil }

// Abort discards the upload. When the upload's creation or its completion was cut short, it then
// looks for it (every upload of exactly its key when the ID is unknown): a create cut short may
// register a moment later, and a completion cut short may still run on the store. When the
// identity may not list uploads (s3:ListBucketMultipartUploads), the store's answer to the abort
// is trusted.
func (u *upload) Abort(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pause := func() error {
		select {
		case <-actx.Done():
			return providers.NetError("AbortMultipartUpload", actx.Err())
		case <-time.After(150 * time.Millisecond):
			return nil
		}
	}
	if u.id != nil {
		if err := u.abort(actx, u.id); err != nil || !u.cutShort {
			return err
		}
		if err := pause(); err != nil {
			return nil // aborted; no time left to look again
		}
	}
	for attempt := 0; attempt < 3; attempt++ {
		ids, err := u.listed(actx)
		if err != nil {
			if u.id != nil && providers.KindOf(err) == providers.KindDenied {
				return nil
			}
			return err
		}
		if len(ids) == 0 {
			if u.id == nil && attempt == 0 { // a create cut short may not be registered yet
				if err := pause(); err != nil {
					return err
				}
				continue
			}
			return nil
		}
		for _, id := range ids {
			if err := u.abort(actx, id); err != nil {
				return err
			}
		}
		if err := pause(); err != nil {
			return err
		}
	}
	return &providers.Error{Op: "AbortMultipartUpload", Kind: providers.KindOther, Msg: "AbortMultipartUpload: the upload of " + u.key + " is still listed after being aborted"}
}

// listed returns the IDs of the unfinished uploads of exactly this key (this upload's when known):
// listed under the key first, then, when that shows none, across the bucket (MinIO keeps an
// upload whose completion was cut short listed only there).
func (u *upload) listed(ctx context.Context) ([]*string, error) {
	for _, prefix := range []*string{&u.key, nil} {
		l, err := u.s.c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &u.s.loc.Bucket, Prefix: prefix})
		if err != nil {
			return nil, u.s.classify("ListMultipartUploads", err)
		}
		var ids []*string
		for _, mu := range l.Uploads {
			if aws.ToString(mu.Key) == u.key && (u.id == nil || aws.ToString(mu.UploadId) == aws.ToString(u.id)) {
				ids = append(ids, mu.UploadId)
			}
		}
		if len(ids) > 0 {
			return ids, nil
		}
	}
	return nil, nil
}

func (u *upload) abort(ctx context.Context, id *string) error {
	_, err := u.s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &u.s.loc.Bucket, Key: &u.key, UploadId: id})
	if e := providers.Classifier(u.s.classify).Err("AbortMultipartUpload", err); e != nil && providers.KindOf(e) != providers.KindNotFound {
		return e
	}
	return nil
}

// checksumFix: a store refusing the integrity headers boto3 ≥ 1.36 sends by default (or SSE, tags).
const checksumFix = "the store refuses a header barman-cloud sends for this configuration: for the checksum headers of boto3 ≥ 1.36 (x-amz-checksum-*, aws-chunked), " +
	"set AWS_REQUEST_CHECKSUM_CALCULATION=when_required and AWS_RESPONSE_CHECKSUM_VALIDATION=when_required in the backup client's environment " +
	"(in-tree: the Cluster's spec.env; Barman Cloud plugin: the ObjectStore's spec.instanceSidecarConfiguration.env); otherwise remove wal/data encryption or tags"

// fixFor names the S3 permission or setting an operation needs.
func (s *Store) fixFor(op string, k providers.Kind) string {
	objects := fmt.Sprintf("arn:aws:s3:::%s/%s*", s.loc.Bucket, s.loc.Base())
	switch k {
	case providers.KindNotFound:
		if op == "HeadBucket" {
			return fmt.Sprintf("create the bucket %q before enabling backups, or grant s3:CreateBucket so barman-cloud can create it on first use", s.loc.Bucket)
		}
	case providers.KindAuth:
		return "check the access key id and secret in the referenced Secret (and the session token, if any): the store rejected the signature or key"
	case providers.KindUnsupported:
		return checksumFix
	case providers.KindThrottled:
		return "the store is throttling (503 SlowDown): retry later or raise its request limits"
	case providers.KindDenied:
		action := map[string]string{
			"ListObjectsV2": "s3:ListBucket on arn:aws:s3:::" + s.loc.Bucket, "PutObject": "s3:PutObject on " + objects,
			"GetObject": "s3:GetObject on " + objects, "HeadObject": "s3:GetObject on " + objects, "DeleteObject": "s3:DeleteObject on " + objects,
			"CreateMultipartUpload": "s3:PutObject on " + objects, "UploadPart": "s3:PutObject on " + objects,
			"CompleteMultipartUpload": "s3:PutObject on " + objects, "AbortMultipartUpload": "s3:AbortMultipartUpload on " + objects,
		}[op]
		if action != "" {
			return "grant " + action
		}
	}
	return ""
}

var (
	deniedCodes = map[string]bool{"AccessDenied": true, "Forbidden": true, "AllAccessDisabled": true, "AccountProblem": true}
	authCodes   = map[string]bool{"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "InvalidToken": true, "ExpiredToken": true, "TokenRefreshRequired": true, "InvalidSecurity": true}
	regionCodes = map[string]bool{"AuthorizationHeaderMalformed": true, "PermanentRedirect": true, "IllegalLocationConstraintException": true, "AuthorizationQueryParametersError": true}
)

// classify turns an SDK error into a redacted *providers.Error.
func (s *Store) classify(op string, err error) *providers.Error {
	var status int
	var hdr http.Header
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		status = re.Response.StatusCode
		hdr = re.Response.Header
	}
	if r := hdr.Get("X-Amz-Bucket-Region"); status >= 300 && status < 400 && (r == "" || r == s.region) {
		// a redirect that is not S3 naming the bucket's region: a proxy or load balancer
		e := providers.RedirectError(op, status, hdr)
		e.Err = err
		e.Msg = s.red.Redact(e.Msg)
		return e
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, msg := ae.ErrorCode(), ae.ErrorMessage()
		e := &providers.Error{Op: op, Code: code, Status: status, Kind: providers.KindOther, Err: err}
		switch {
		case code == "NotFound" || code == "NoSuchBucket" || code == "NoSuchKey" || status == http.StatusNotFound:
			e.Kind = providers.KindNotFound
		case authCodes[code]:
			e.Kind = providers.KindAuth
		case regionCodes[code] || status == http.StatusMovedPermanently:
			e.Kind = providers.KindRegion
		case deniedCodes[code] || status == http.StatusForbidden:
			e.Kind = providers.KindDenied
		case code == "SlowDown" || code == "ServiceUnavailable" || status == http.StatusServiceUnavailable:
			e.Kind = providers.KindThrottled
		case code == "NotImplemented" || code == "XAmzContentSHA256Mismatch" || code == "KMS.NotFoundException" ||
			strings.Contains(strings.ToLower(msg), "kms") || strings.Contains(strings.ToLower(msg), "encryption") ||
			strings.Contains(strings.ToLower(msg), "checksum") || strings.Contains(strings.ToLower(msg), "tagging"):
			e.Kind = providers.KindUnsupported
		}
		text := code
		if msg != "" && msg != code {
			text += ": " + msg
		}
		if status != 0 {
			text = fmt.Sprintf("%d %s (%s)", status, http.StatusText(status), text)
		}
		if e.Kind == providers.KindRegion {
			if r := hdr.Get("X-Amz-Bucket-Region"); r != "" && r != s.region {
				text += fmt.Sprintf("; the bucket is in %s, requests are signed for %s", r, s.region)
				e.Fix = fmt.Sprintf("set s3Credentials.region to a Secret key holding %q", r)
			}
		}
		if e.Fix == "" {
			e.Fix = s.fixFor(op, e.Kind)
		}
		e.Msg = s.red.Redact(op + ": " + text)
		e.Fix = s.red.Redact(e.Fix)
		return e
	}
	if ne := providers.NetError(op, err); ne != nil {
		ne.Msg = s.red.Redact(ne.Msg)
		return ne
	}
	if status != 0 {
		return &providers.Error{Op: op, Status: status, Kind: providers.KindOther, Err: err, Msg: s.red.Redact(fmt.Sprintf("%s: HTTP %d %s", op, status, http.StatusText(status)))}
	}
	return &providers.Error{Op: op, Kind: providers.KindOther, Err: err, Msg: s.red.Redact(op + ": " + providers.FirstLine(err.Error()))}
}
