package main

// These tests get certificates for real, from Pebble, Let's Encrypt's ACME
// test server, run on loopback beside the program built as users run it.
// Pebble validates for real too: it looks the test's names up in a small
// DNS server of the test's own, which sends it to 127.0.0.1, and connects
// to the ports of the server under test (tlsPort, httpPort). Pebble's own
// HTTPS is signed by a CA the test makes, which the server under test
// trusts through SSL_CERT_FILE, as a user of a private ACME server would.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/dns/dnsmessage"
)

// pebbleVersion is the Pebble that go run fetches from the module proxy:
// pinned, so that CI does not change under us.
const pebbleVersion = "v2.10.3"

// pebble is a running Pebble.
type pebble struct {
	directory string         // the ACME directory URL
	roots     *x509.CertPool // Pebble's root, which signs what it issues
	logs      *syncBuffer
}

// orders is how many orders Pebble has taken.
func (p *pebble) orders() int { return strings.Count(p.logs.String(), "Added order") }

// startPebble runs Pebble with its API signed by ca, resolving names with
// the DNS server at dns, and validating on tlsPort (tls-alpn-01) and
// httpPort (http-01). It fails the test, never skips it, when Pebble cannot
// be fetched or started.
func startPebble(t *testing.T, ca *testCA, dns string, tlsPort, httpPort string) *pebble {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM := ca.issue(t, 100, "127.0.0.1", "localhost")
	api, mgmt := freeAddr(t), freeAddr(t)
	config := fmt.Sprintf(`{"pebble": {"listenAddress": %q, "managementListenAddress": %q,
		"certificate": "cert.pem", "privateKey": "key.pem", "httpPort": %s, "tlsPort": %s,
		"retryAfter": {"authz": 1, "order": 1}, "keyAlgorithm": "ecdsa"}}`, api, mgmt, httpPort, tlsPort)
	writeFiles(t, filepath.Join(dir, "cert.pem"), certPEM, filepath.Join(dir, "key.pem"), keyPEM,
		filepath.Join(dir, "pebble.json"), []byte(config))

	cmd := exec.Command("go", "run", "github.com/letsencrypt/pebble/v2/cmd/pebble@"+pebbleVersion,
		"-config", "pebble.json", "-dnsserver", dns)
	cmd.Dir = dir
	// No random waits before validating, no nonces refused on purpose, no
	// authorizations reused: the same run every time.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	p := &pebble{directory: "https://" + api + "/dir", logs: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	// go run starts Pebble as a child: the two share a process group, and
	// the cleanup kills the group, or Pebble would outlive the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("go run pebble: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	// Ready once its management API gives out the root. The first run
	// builds Pebble, which can take a minute or two on a cold cache.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("pebble exited:\n%s", p.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not start in five minutes:\n%s", p.logs)
		}
		res, err := client.Get("https://" + mgmt + "/roots/0")
		if err != nil {
			continue
		}
		root, _ := io.ReadAll(res.Body)
		res.Body.Close()
		p.roots = x509.NewCertPool()
		if res.StatusCode != http.StatusOK || !p.roots.AppendCertsFromPEM(root) {
			t.Fatalf("pebble's root: %d %s", res.StatusCode, root)
		}
		return p
	}
}

// startDNS serves DNS over TCP, as Pebble asks it, on loopback: each of
// names is at 127.0.0.1, any other name has no address.
func startDNS(t *testing.T, names ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go answerDNS(conn, names)
		}
	}()
	return ln.Addr().String()
}

// answerDNS answers the queries of one connection, each a message after
// its length in two bytes (RFC 1035, 4.2.2).
func answerDNS(conn net.Conn, names []string) {
	defer conn.Close()
	for {
		var n uint16
		if binary.Read(conn, binary.BigEndian, &n) != nil {
			return
		}
		query := make([]byte, n)
		if _, err := io.ReadFull(conn, query); err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(query)
		if err != nil {
			return
		}
		q, err := p.Question()
		if err != nil {
			return
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
		b.StartQuestions()
		b.Question(q)
		b.StartAnswers()
		if q.Type == dnsmessage.TypeA && slices.Contains(names, strings.TrimSuffix(q.Name.String(), ".")) {
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET},
				dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
		}
		answer, err := b.Finish()
		if err != nil {
			return
		}
		conn.Write(binary.BigEndian.AppendUint16(nil, uint16(len(answer))))
		conn.Write(answer)
	}
}

// startHTTPSProcess runs the built program with args, trusting ca (for
// Pebble's API), and returns once it listens.
func startHTTPSProcess(t *testing.T, bin string, ca *testCA, args ...string) *process {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeFiles(t, caFile, ca.pem)
	cmd := exec.Command(bin, append([]string{"serve", "-rate", "0"}, args...)...)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+caFile)
	p := &process{cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	waitForLog(t, p.logs, listeningLine, 1)
	return p
}

// running fails the test if p has exited.
func running(t *testing.T, p *process) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("the server exited: %v\n%s", p.err, p.logs)
	default:
	}
}

var certificateReady = regexp.MustCompile(`msg="certificate ready" name=api.tutorials.test not_after=`)

// The whole path, once for each challenge: with tls-alpn-01 on the HTTPS
// listener (autocert's first choice), then with Pebble's tlsPort where
// nothing listens, so that only http-01 on the plain listener can work.
func TestHTTPSWithACME(t *testing.T) {
	for _, challenge := range []string{"tls-alpn-01", "http-01"} {
		t.Run(challenge, func(t *testing.T) {
			bin := buildBinary(t)
			db := filepath.Join(t.TempDir(), "t.db")
			key := createKey(t, bin, db)
			httpsAddr, httpAddr := freeAddr(t), freeAddr(t)
			_, tlsPort, _ := net.SplitHostPort(httpsAddr)
			if challenge == "http-01" {
				_, tlsPort, _ = net.SplitHostPort(freeAddr(t))
			}
			_, httpPort, _ := net.SplitHostPort(httpAddr)
			ca := newTestCA(t)
			acme := startPebble(t, ca, startDNS(t, "api.tutorials.test"), tlsPort, httpPort)
			args := []string{"-db", db, "-domain", "api.tutorials.test", "-addr", httpsAddr, "-http-addr", httpAddr,
				"-acme-directory", acme.directory, "-acme-email", "ops@tutorials.test"}

			p := startHTTPSProcess(t, bin, ca, args...)
			waitForLog(t, p.logs, certificateReady, 1)
			if m := httpAddrLine.FindStringSubmatch(p.logs.String()); m == nil || m[1] != "api.tutorials.test" || m[2] != httpAddr {
				t.Errorf("the listening line does not name the names served and the plain address:\n%s", p.logs)
			}
			res, body := httpsGet(t, httpsAddr, "https://api.tutorials.test/api/v1/tutorials", key, acme.roots)
			checkHTTPSAnswer(t, res, body)
			if diff := cmp.Diff(wantPlainAnswers(httpsAddr, "api.tutorials.test"), plainAnswers(t, httpAddr, "api.tutorials.test")); diff != "" {
				t.Errorf("plain HTTP (-want +got):\n%s", diff)
			}
			validatedOverHTTP := strings.Contains(acme.logs.String(), "Attempting to validate w/ HTTP: http://api.tutorials.test:"+httpPort+"/.well-known/acme-challenge/")
			if validatedOverHTTP != (challenge == "http-01") {
				t.Errorf("pebble validated over HTTP: %v, want %v:\n%s", validatedOverHTTP, challenge == "http-01", acme.logs)
			}
			checkCertDir(t, filepath.Join(filepath.Dir(db), "certs"))

			// A restart takes the certificate from the directory: no order.
			orders := acme.orders()
			stop(t, p)
			p = startHTTPSProcess(t, bin, ca, args...)
			waitForLog(t, p.logs, certificateReady, 1)
			res, body = httpsGet(t, httpsAddr, "https://api.tutorials.test/healthz", key, acme.roots)
			checkHTTPSAnswer(t, res, body)
			if n := acme.orders(); n != orders {
				t.Errorf("pebble has %d orders after the restart, want the %d before it", n, orders)
			}
			stop(t, p)
		})
	}
}

// checkCertDir holds the certificate directory to its modes: 0700, and
// 0600 for each file in it, keys among them.
func checkCertDir(t *testing.T, dir string) {
	t.Helper()
	modes := map[string]os.FileMode{}
	want := map[string]os.FileMode{}
	for _, path := range append([]string{dir}, must(filepath.Glob(filepath.Join(dir, "*")))...) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		modes[filepath.Base(path)] = fi.Mode().Perm()
		want[filepath.Base(path)] = 0o600
	}
	want["certs"] = 0o700
	if len(modes) < 3 { // the directory, the account key, a certificate
		t.Errorf("the certificate directory holds %v, want the account key and a certificate", modes)
	}
	if diff := cmp.Diff(want, modes); diff != "" {
		t.Errorf("modes in %s (-want +got):\n%s", dir, diff)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A name that fails validation is one line in the log; the names that
// work are served; a handshake for the failed one orders nothing more.
func TestHTTPSWithANameThatFailsValidation(t *testing.T) {
	bin := buildBinary(t)
	db := filepath.Join(t.TempDir(), "t.db")
	key := createKey(t, bin, db)
	httpsAddr, httpAddr := freeAddr(t), freeAddr(t)
	_, tlsPort, _ := net.SplitHostPort(httpsAddr)
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	ca := newTestCA(t)
	// broken.tutorials.test has no address: no challenge can reach it.
	acme := startPebble(t, ca, startDNS(t, "api.tutorials.test"), tlsPort, httpPort)
	p := startHTTPSProcess(t, bin, ca, "-db", db, "-domain", "api.tutorials.test,broken.tutorials.test",
		"-addr", httpsAddr, "-http-addr", httpAddr, "-acme-directory", acme.directory)

	failed := regexp.MustCompile(`level=ERROR msg="certificate not obtained" name=broken.tutorials.test error=.* retry_in=1h0m0s hint="check that the name's DNS points at this machine`)
	waitForLog(t, p.logs, certificateReady, 1)
	waitForLog(t, p.logs, failed, 1)
	res, body := httpsGet(t, httpsAddr, "https://api.tutorials.test/api/v1/tutorials", key, acme.roots)
	checkHTTPSAnswer(t, res, body)
	orders := acme.orders()
	for range 3 {
		if _, err := handshake(httpsAddr, "broken.tutorials.test", acme.roots, 0); err == nil {
			t.Fatal("a handshake for the name without a certificate succeeded")
		}
	}
	running(t, p)
	if n := acme.orders(); n != orders {
		t.Errorf("handshakes for the failed name made %d orders, want none", n-orders)
	}
	stop(t, p)
	logs := p.logs.String()
	if n := strings.Count(logs, `msg="certificate not obtained"`); n != 1 || strings.Contains(logs, "handshake") {
		t.Errorf("%d failure lines (want 1), and no handshake errors:\n%s", n, logs)
	}
}
