// Package https lets the server speak HTTPS by itself. With Domains it gets
// its certificates from an ACME CA (Let's Encrypt unless ACMEDirectory names
// another) through golang.org/x/crypto/acme/autocert, which keeps them in
// CertDir and renews them; with CertFile and KeyFile it serves the files it
// is given, and picks up new ones without a restart. Either way a second
// listener, on HTTPAddr, speaks plain HTTP only to answer ACME's HTTP-01
// challenges and to tell clients to use HTTPS, and every HTTPS answer
// carries Strict-Transport-Security.
//
// The server calls Setup once its listener is bound, then only the methods
// of the *Front it gets back. Without HTTPS that is nil, whose methods do
// nothing: the server speaks plain HTTP.
package https

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// ---- Configuration ----

// Config is how the server gets its certificates: from ACME for Domains, or
// from CertFile and KeyFile. Neither is plain HTTP.
type Config struct {
	Domains       []string // get certificates from ACME for these names
	HTTPAddr      string   // the plain-HTTP listener; "" is :80
	CertDir       string   // where ACME's certificates are kept
	ACMEDirectory string   // the ACME server's directory URL; "" is Let's Encrypt
	ACMEEmail     string   // an address the CA may write to
	CertFile      string   // or a certificate of one's own (PEM, with its chain)
	KeyFile       string
}

// On reports whether cfg asks for HTTPS.
func (cfg Config) On() bool {
	return len(cfg.Domains) > 0 || cfg.CertFile != "" || cfg.KeyFile != ""
}

// hostName is a DNS name a public CA will certify: two labels or more, in
// ASCII (an international name in its xn-- form), no wildcard (ACME gives
// those only through DNS challenges, which need the DNS provider's keys).
var hostName = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ParseDomains reads a comma-separated list of names for Domains: in lower
// case, each once.
func ParseDomains(list string) ([]string, error) {
	var domains []string
	for _, d := range strings.Split(list, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" {
			continue
		}
		if len(d) > 253 || !hostName.MatchString(d) || net.ParseIP(d) != nil {
			return nil, fmt.Errorf("-domain: %q is not a host name like api.example.com", d)
		}
		if !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
	}
	return domains, nil
}

// Check reports the settings that make no sense together, in the words of
// the server's flags.
func (cfg Config) Check() error {
	byACME, byFiles := len(cfg.Domains) > 0, cfg.CertFile != "" || cfg.KeyFile != ""
	switch {
	case byACME && byFiles:
		return errors.New("-domain and -tls-cert are two ways to get a certificate: choose one")
	case (cfg.CertFile == "") != (cfg.KeyFile == ""):
		return errors.New("-tls-cert and -tls-key go together")
	case !byACME && (cfg.CertDir != "" || cfg.ACMEDirectory != "" || cfg.ACMEEmail != ""):
		return errors.New("-cert-dir, -acme-directory and -acme-email need -domain")
	case !byACME && !byFiles && cfg.HTTPAddr != "":
		return errors.New("-http-addr needs -domain or -tls-cert")
	}
	if cfg.ACMEDirectory != "" {
		if u, err := url.Parse(cfg.ACMEDirectory); err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("-acme-directory must be an https:// URL, not %q", cfg.ACMEDirectory)
		}
	}
	return nil
}

// ---- Serving ----

// hsts is the Strict-Transport-Security of every HTTPS answer: a year, the
// usual value. Not includeSubDomains: the server cannot know what else
// lives under its names.
const hsts = "max-age=31536000"

// Front is what HTTPS adds to a running server: the plain-HTTP listener
// and, with Domains, the certificates being obtained.
type Front struct {
	names   []string // served, for the listening line
	plain   *http.Server
	plainLn net.Listener
	acme    *acmeCerts // nil with CertFile
}

// Refuser writes the plain listener's answer to a request that should have
// come over HTTPS, with status (403, or 308 with its Location set), in the
// server's own format.
type Refuser func(w http.ResponseWriter, r *http.Request, status int)

// Setup, when cfg asks for HTTPS, makes srv an HTTPS server: it returns ln
// wrapped in TLS (1.2 at least, HTTP/2 offered), and a Front that holds the
// plain-HTTP listener, bound already, with srv's limits and error log, its
// handler wrapped in around (the server's request log). Everything that
// can fail at start fails here, before a certificate is ordered, with one
// line for the log: a certificate directory that cannot be written,
// certificate files that cannot be read, an HTTPAddr taken. On an error it
// closes ln. Without HTTPS it returns ln and a nil Front.
func Setup(cfg Config, srv *http.Server, ln net.Listener, logger *slog.Logger, refuse Refuser, around func(http.Handler) http.Handler) (net.Listener, *Front, error) {
	if !cfg.On() {
		return ln, nil, nil
	}
	front, tlsConfig, challenges, err := certSource(cfg, logger)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	front.plainLn, err = net.Listen("tcp", cmp.Or(cfg.HTTPAddr, ":80"))
	if err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("the plain-HTTP listener (-http-addr): %w", err)
	}
	_, httpsPort, _ := net.SplitHostPort(ln.Addr().String())
	front.plain = &http.Server{
		Handler:           around(challenges(answerPlainHTTP(httpsPort, front.names, refuse))),
		ReadHeaderTimeout: srv.ReadHeaderTimeout,
		ReadTimeout:       srv.ReadTimeout,
		WriteTimeout:      srv.WriteTimeout,
		IdleTimeout:       srv.IdleTimeout,
		MaxHeaderBytes:    srv.MaxHeaderBytes,
		ErrorLog:          srv.ErrorLog,
	}

	tlsConfig.MinVersion = tls.VersionTLS12
	// h2 first: net/http serves HTTP/2 on a TLS listener that offers it.
	tlsConfig.NextProtos = append([]string{"h2", "http/1.1"}, tlsConfig.NextProtos...)
	api := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", hsts)
		api.ServeHTTP(w, r)
	})
	srv.ErrorLog = log.New(&withoutHandshakeErrors{srv.ErrorLog.Writer()}, "", 0)
	return tls.NewListener(ln, tlsConfig), front, nil
}

// certSource makes the Front and TLS configuration of the way cfg chose to
// get certificates, and challenges, which adds that way's part to the
// plain-HTTP handler: autocert's HTTP-01 answers, or nothing.
func certSource(cfg Config, logger *slog.Logger) (*Front, *tls.Config, func(http.Handler) http.Handler, error) {
	if cfg.CertFile != "" {
		files, err := loadCertFiles(cfg.CertFile, cfg.KeyFile, logger)
		if err != nil {
			return nil, nil, nil, err
		}
		noChallenges := func(h http.Handler) http.Handler { return h }
		return &Front{names: files.names()}, &tls.Config{GetCertificate: files.getCertificate}, noChallenges, nil
	}
	certs, err := newACMECerts(cfg, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	tlsConfig := &tls.Config{GetCertificate: certs.getCertificate, NextProtos: []string{acme.ALPNProto}}
	return &Front{names: cfg.Domains, acme: certs}, tlsConfig, certs.answerHTTP01, nil
}

// LogAttrs are the listening line's words on HTTPS: the names served and
// the plain listener's address.
func (f *Front) LogAttrs() []any {
	if f == nil {
		return nil
	}
	return []any{"https", strings.Join(f.names, ","), "http_addr", f.plainLn.Addr().String()}
}

// Start serves plain HTTP and, with Domains, starts getting certificates,
// until ctx is done. A failure of the plain listener is sent on failed, as
// the server's own listener's is.
func (f *Front) Start(ctx context.Context, failed chan<- error) {
	if f == nil {
		return
	}
	go func() {
		if err := f.plain.Serve(f.plainLn); !errors.Is(err, http.ErrServerClosed) {
			select {
			case failed <- fmt.Errorf("the plain-HTTP listener: %w", err):
			default: // the HTTPS listener failed first: the server is stopping
			}
		}
	}()
	if f.acme != nil {
		for _, name := range f.names {
			go f.acme.obtain(ctx, name)
		}
	}
}

// Shutdown stops the plain listener as the server stops its own.
func (f *Front) Shutdown(ctx context.Context) {
	if f == nil {
		return
	}
	if f.plain.Shutdown(ctx) != nil {
		f.plain.Close()
	}
}

// Close lets go of the plain listener when the server stops before it
// started.
func (f *Front) Close() {
	if f != nil {
		f.plainLn.Close()
	}
}

// answerPlainHTTP is every answer on plain HTTP but ACME's. The API gets a
// 403, not a redirect: its key has crossed the network in the clear
// already, and a client that followed a redirect would never learn it.
// Anything else (a person's browser) is sent to the same path on HTTPS,
// on a name the certificate covers.
func answerPlainHTTP(httpsPort string, names []string, refuse Refuser) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/") {
			refuse(w, r, http.StatusForbidden)
			return
		}
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		host = strings.ToLower(host)
		if !slices.ContainsFunc(names, func(n string) bool { return certifies(n, host) }) {
			// A name of the certificate's, unless all are wildcards.
			if i := slices.IndexFunc(names, func(n string) bool { return !strings.HasPrefix(n, "*.") }); i >= 0 {
				host = names[i]
			}
		}
		if httpsPort != "443" {
			host = net.JoinHostPort(host, httpsPort)
		}
		w.Header().Set("Location", "https://"+host+r.URL.RequestURI())
		refuse(w, r, http.StatusPermanentRedirect)
	})
}

// certifies reports whether a certificate for name (which may be a
// wildcard, in a certificate of one's own) is good for host.
func certifies(name, host string) bool {
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		_, after, found := strings.Cut(host, ".")
		return found && after == rest
	}
	return name == host
}

// withoutHandshakeErrors drops net/http's "TLS handshake error" lines:
// every scanner on the internet causes them, and so does every client
// asking for a name whose certificate is not there yet. What an operator
// must see, a certificate that could not be had, is logged once where it
// happens.
type withoutHandshakeErrors struct{ w io.Writer }

func (l *withoutHandshakeErrors) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte("http: TLS handshake error")) {
		return len(p), nil
	}
	return l.w.Write(p)
}

// ---- Certificates from ACME ----

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

// ---- Certificates of one's own ----

// certFiles serves the certificate in -tls-cert and -tls-key. It reads
// both files again on every handshake, a few kilobytes, and takes a pair
// that differs from the one it has: a renewed certificate is served from
// the next connection on, whatever renews it (certbot, a cron job, a
// person), with no signal and no restart. A new pair that fails to load (a
// key that does not match, the cert written before the key) is logged
// once, and the last good pair stays in service.
type certFiles struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu   sync.Mutex
	cert *tls.Certificate
	seen []byte // the files as last read, the cert's then the key's
}

// loadCertFiles loads the pair for the first time: without it the server
// could serve nothing, so an error stops it.
func loadCertFiles(certFile, keyFile string, logger *slog.Logger) (*certFiles, error) {
	f := &certFiles{certFile: certFile, keyFile: keyFile, logger: logger}
	contents, err := f.read()
	if err != nil {
		return nil, err
	}
	if f.cert, err = parsePair(contents, certFile); err != nil {
		return nil, err
	}
	f.seen = contents
	return f, nil
}

// read reads both files into one slice: certificate, a NUL, key.
func (f *certFiles) read() ([]byte, error) {
	cert, err := os.ReadFile(f.certFile)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert: %w", err)
	}
	key, err := os.ReadFile(f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("-tls-key: %w", err)
	}
	return slices.Concat(cert, []byte{0}, key), nil
}

// parsePair parses what read returned.
func parsePair(contents []byte, certFile string) (*tls.Certificate, error) {
	certPEM, keyPEM, _ := bytes.Cut(contents, []byte{0})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert %s and -tls-key: %w", certFile, err)
	}
	return &cert, nil // Leaf is filled in by X509KeyPair
}

// names are the names the certificate is for, for the listening line.
func (f *certFiles) names() []string {
	leaf := f.cert.Leaf
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames
	}
	return []string{leaf.Subject.CommonName}
}

// getCertificate is the TLS listener's: see certFiles.
func (f *certFiles) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	contents, err := f.read()
	switch {
	case err != nil:
		// Gone for a moment while a renewer replaces it, most likely:
		// say so once, and serve the pair in hand.
		if !bytes.Equal(f.seen, []byte(err.Error())) {
			f.seen = []byte(err.Error())
			f.logger.Error("certificate files not read, still serving the last good ones", "error", err)
		}
	case !bytes.Equal(contents, f.seen):
		f.seen = contents
		cert, err := parsePair(contents, f.certFile)
		if err != nil {
			f.logger.Error("new certificate files not loaded, still serving the last good ones", "error", err)
			break
		}
		f.cert = cert
		f.logger.Info("certificate files reloaded", "names", strings.Join(f.names(), ","),
			"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339), "serial", serial(cert.Leaf))
	}
	return f.cert, nil
}

// serial is a certificate's serial number as openssl x509 -serial prints
// it, to tell one certificate from the next in the log.
func serial(c *x509.Certificate) string {
	return strings.ToUpper(c.SerialNumber.Text(16))
}
