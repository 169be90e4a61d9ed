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
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/crypto/acme"
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
