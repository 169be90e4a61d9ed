package https

// This file gets the certificates of Domains from an ACME CA, through
// autocert, and watches their renewal.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// After a failed attempt a name waits before the next: the ACME server
// unreachable (a network that is not up yet, the CA down), two minutes,
// doubled each time up to an hour; the CA refusing (a validation failed, a
// rate limit), an hour, since Let's Encrypt allows five failed validations
// per name and hour and autocert spends up to two an attempt (tls-alpn-01,
// then http-01). A restart tries again at once. Not one minute: autocert
// holds on to a failure for that long, and an attempt in that minute
// would only fetch it back.
const (
	retryUnreachable = 2 * time.Minute
	retryRefused     = time.Hour
)

// acmeCerts gets the certificates of -domain from autocert's Manager. It
// asks for each name as the server starts rather than at the first
// client's handshake, so that the log says at once whether it worked, and
// it spaces the attempts of a name that failed, which autocert alone
// would retry on any handshake a minute later. A handshake for a name
// without its certificate yet fails at once, and costs the CA nothing.
type acmeCerts struct {
	manager *autocert.Manager
	logger  *slog.Logger
	mu      sync.Mutex
	ready   map[string]bool
}

// newACMECerts prepares the certificate directory and the Manager.
func newACMECerts(cfg Config, logger *slog.Logger) (*acmeCerts, error) {
	dir := cfg.CertDir
	if err := prepareCertDir(dir, logger); err != nil {
		return nil, err
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS, // the README says that -domain accepts the CA's terms
		Cache:      autocert.DirCache(dir),
		HostPolicy: autocert.HostWhitelist(cfg.Domains...),
		Email:      cfg.ACMEEmail,
	}
	if cfg.ACMEDirectory != "" {
		m.Client = &acme.Client{DirectoryURL: cfg.ACMEDirectory}
	}
	return &acmeCerts{manager: m, logger: logger, ready: make(map[string]bool)}, nil
}

// prepareCertDir makes dir, private to the server's user, and proves it
// can be written. A certificate that could not be stored would be ordered
// anew on every start, and the CA's rate limits punish that: so a
// directory that cannot be written stops the server before any order.
func prepareCertDir(dir string, logger *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("certificate directory: %w", err)
	}
	probe, err := os.CreateTemp(dir, ".write-test-")
	if err != nil {
		return fmt.Errorf("certificate directory %s cannot be written: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	// A directory the user made before keeps its mode: chmod on a
	// directory someone chose could break other things. Say it instead.
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("the certificate directory can be read by other users: chmod 700 it", "dir", dir, "mode", fi.Mode().Perm().String())
	}
	return nil
}

// ecdsaHello is a handshake as a current client makes it, for obtain to
// ask autocert for a name: an ECDSA certificate, which every client of
// the last decade takes.
func ecdsaHello(name string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{
		ServerName:       name,
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedCurves:  []tls.CurveID{tls.CurveP256},
		CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
	}
}

// obtain gets name's certificate, from the directory when a valid one is
// there, else from the CA, and tries again after a failure (see the
// retry constants) until ctx is done. Once it has one, autocert renews it,
// and watch tells the log how that goes.
func (a *acmeCerts) obtain(ctx context.Context, name string) {
	wait := retryUnreachable
	for {
		cert, err := a.manager.GetCertificate(ecdsaHello(name))
		if err == nil {
			a.mu.Lock()
			a.ready[name] = true
			a.mu.Unlock()
			a.logger.Info("certificate ready", "name", name, "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
			a.watch(ctx, name, cert.Leaf)
			return
		}
		// autocert's words for a failed validation ("no viable challenge
		// type found") do not say what to look at: the hint does.
		retry, hint := retryRefused, "check that the name's DNS points at this machine and that ports 80 and 443 reach it"
		if errors.As(err, new(*url.Error)) { // no answer: the network or the CA is down
			retry, wait = wait, min(wait*2, retryRefused)
			hint = "the ACME server did not answer: check -acme-directory and the network"
		}
		a.logger.Error("certificate not obtained", "name", name, "error", err, "retry_in", retry, "hint", hint)
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

// watchEvery is how often watch looks at a certificate: often enough for
// the shortest lifetimes a CA gives (six days at Let's Encrypt), and a
// lookup in memory.
const watchEvery = time.Hour

// watch looks at name's certificate every watchEvery until ctx is done, and
// logs what an operator must hear of it: that it was renewed, and when
// autocert, which renews in silence and tries again in silence after a
// failure, is late. A certificate that quietly runs out takes the site down.
func (a *acmeCerts) watch(ctx context.Context, name string, leaf *x509.Certificate) {
	w := &certWatch{notAfter: leaf.NotAfter}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(watchEvery):
		}
		cert, err := a.manager.GetCertificate(ecdsaHello(name))
		if err != nil {
			a.logger.Error("certificate not available", "name", name, "error", err)
			continue
		}
		notAfter := cert.Leaf.NotAfter.UTC().Format(time.RFC3339)
		switch w.look(cert.Leaf, time.Now()) {
		case renewed:
			a.logger.Info("certificate renewed", "name", name, "not_after", notAfter)
		case late:
			a.logger.Warn("certificate not renewed", "name", name, "not_after", notAfter,
				"hint", "check that the name's DNS points at this machine and that ports 80 and 443 reach it")
		}
	}
}

// certWatch is what watch remembers of one name's certificate.
type certWatch struct {
	notAfter time.Time // of the newest certificate seen
	warned   time.Time // when late was last reported
}

// finding is what look finds worth telling.
type finding int

const (
	nothingNew finding = iota
	renewed            // a certificate newer than the last seen
	late               // renewal overdue: said at most once a day
)

// look compares leaf, the certificate served at now, with the last seen.
// autocert renews a certificate in the last third of its life, or its last
// 30 days when that is shorter; once a third of that time has gone by
// without a renewal, something is wrong that a person must mend (DNS, a
// firewall, the CA's rate limits), and there is still time to.
func (w *certWatch) look(leaf *x509.Certificate, now time.Time) finding {
	if leaf.NotAfter.After(w.notAfter) {
		w.notAfter = leaf.NotAfter
		return renewed
	}
	window := min(30*24*time.Hour, leaf.NotAfter.Sub(leaf.NotBefore)/3)
	if leaf.NotAfter.Sub(now) < window*2/3 && now.Sub(w.warned) >= 24*time.Hour {
		w.warned = now
		return late
	}
	return nothingNew
}

// getCertificate is the TLS listener's: the certificate of a name that
// obtain has got (autocert then serves it from memory and renews it), and
// autocert's answer to the CA's own tls-alpn-01 handshake.
func (a *acmeCerts) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if slices.Equal(hello.SupportedProtos, []string{acme.ALPNProto}) {
		return a.manager.GetCertificate(hello)
	}
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	a.mu.Lock()
	ready := a.ready[name]
	a.mu.Unlock()
	if !ready {
		return nil, fmt.Errorf("no certificate for %q", name)
	}
	return a.manager.GetCertificate(hello)
}

// answerHTTP01 is autocert's answer to the CA's http-01 requests, in
// front of next. autocert checks the request's Host against -domain as it
// is, so a port in it (a plain listener on another port than 80, behind a
// forward) would fail every challenge: it gets the name alone.
func (a *acmeCerts) answerHTTP01(next http.Handler) http.Handler {
	challenges := a.manager.HTTPHandler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, _, err := net.SplitHostPort(r.Host); err == nil {
			r = r.Clone(r.Context())
			r.Host = host
		}
		challenges.ServeHTTP(w, r)
	})
}
