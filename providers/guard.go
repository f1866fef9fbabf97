package providers

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/cnpg-preflight/cnpg-preflight/internal/text"
)

// Bounds on what one target may cost, whatever the endpoint sends back.
const (
	// MaxResponseBody caps every response body read from an endpoint (listing pages, error
	// documents, backup.info, probe read-backs): no answer barman-cloud relies on is larger.
	MaxResponseBody = 2 << 20
	// MaxResponseHeader caps the response headers.
	MaxResponseHeader = 64 << 10
	// MaxRequests caps the HTTP requests sent for one target (a normal run sends a dozen; a source
	// with a large archive a few hundred).
	MaxRequests = 2000
)

// RedirectLocationHeader carries a 3xx answer's Location once the guard has taken it off the
// response (so that no HTTP client can follow it).
const RedirectLocationHeader = "X-Cnpg-Preflight-Redirect-Location"

// ErrBodyTooLarge is returned by a response body read past MaxResponseBody.
var ErrBodyTooLarge = fmt.Errorf("the endpoint sent more than %d MiB in one answer", MaxResponseBody>>20)

// ErrRequestBudget is returned once a target has sent MaxRequests requests.
var ErrRequestBudget = fmt.Errorf("more than %d requests to the endpoint for one target (an endless listing?)", MaxRequests)

// guard is the RoundTripper of every Net: it never lets a redirect be followed (the Location is
// moved out of reach of http.Client), sends no Referer, counts requests against the budget, caps
// every response body, and logs one sanitized line per request with --verbose.
type guard struct {
	n        *Net
	inner    http.RoundTripper
	requests atomic.Int64
}

func (g *guard) RoundTrip(r *http.Request) (*http.Response, error) {
	if g.requests.Add(1) > MaxRequests {
		return nil, ErrRequestBudget
	}
	if r.Header.Get("Referer") != "" {
		r = r.Clone(r.Context())
		r.Header.Del("Referer")
	}
	start := time.Now()
	resp, err := g.inner.RoundTrip(r)
	if err == nil {
		g.n.noteDate(resp.Header, start)
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			if loc := resp.Header.Get("Location"); loc != "" {
				resp.Header.Set(RedirectLocationHeader, loc)
				resp.Header.Del("Location")
			}
		}
		resp.Body = &cappedBody{rc: resp.Body, left: MaxResponseBody}
	}
	if g.n.logf != nil {
		status := "error"
		if err != nil {
			if e := NetError("request", err); e != nil {
				status = string(e.Kind)
			}
		} else {
			status = text.Cap(text.Sanitize(resp.Status), 80)
		}
		g.n.logf("http %s %s%s -> %s (%s)", r.Method, r.URL.Host, text.Cap(r.URL.EscapedPath(), 200), status, ms(time.Since(start)))
	}
	return resp, err
}

// cappedBody fails a read past the cap instead of handing an endless stream to a decoder.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// one more byte tells a body of exactly the cap from a longer one
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, ErrBodyTooLarge
		}
		return b.rc.Read(p)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// RedirectError describes a 3xx answer: the endpoint sent the request elsewhere. Neither
// barman-cloud nor cnpg-preflight follows it, so no credential reached the other host.
func RedirectError(op string, status int, hdr http.Header) *Error {
	where := "another location"
	if loc := hdr.Get(RedirectLocationHeader); loc != "" {
		if u, err := url.Parse(loc); err == nil && u.Host != "" {
			where = "host " + text.Cap(text.Sanitize(u.Host), 100)
		} else {
			where = "path " + text.Cap(text.Sanitize(loc), 100)
		}
	}
	return &Error{Op: op, Kind: KindRedirect, Status: status,
		Msg: fmt.Sprintf("%s: %d %s: the endpoint redirects to %s; barman-cloud does not follow redirects (and cnpg-preflight sent nothing there)", op, status, http.StatusText(status), where),
		Fix: "point endpointURL / destinationPath at the endpoint that answers the requests itself (a load balancer or proxy in front of the store redirects instead of forwarding)"}
}

// IsBodyTooLarge reports whether err comes from a capped response body.
func IsBodyTooLarge(err error) bool { return errors.Is(err, ErrBodyTooLarge) }
