package https

// This file serves a certificate of one's own, from CertFile and KeyFile,
// and picks up a renewed pair without a restart.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

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
