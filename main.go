// Command tutorials serves a versioned JSON API for a library of tutorials,
// guarded by API keys, on one SQLite file or on PostgreSQL. Its commands
// are in usageText, below; README.md has the API and the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"

	"tutorials/internal/cors"
	"tutorials/internal/https"
	"tutorials/internal/lastused"
	"tutorials/internal/logbuf"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3". A
// plain go build falls back to what the Go toolchain recorded.
var version = ""

func main() {
	// SIGINT (Ctrl-C) and SIGTERM (systemd, docker stop) cancel ctx, which
	// starts a graceful shutdown.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	var usage *usageError
	switch {
	case err == nil:
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "tutorials:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "tutorials:", err)
		os.Exit(1)
	}
}

// usageError is a command line that makes no sense. It exits 2, other
// failures 1, as is the custom for command-line tools.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

const usageText = `usage:
  tutorials [serve] [-addr ADDR] [-db FILE|URL] [-rate N] [-burst N] [-log-format text|json]
                    [-cors-origins ORIGIN,...] [-trust-proxy]
                    [-domain NAME,... [-cert-dir DIR] [-acme-directory URL] [-acme-email ADDR]
                     | -tls-cert FILE -tls-key FILE] [-http-addr ADDR]
  tutorials keys create -name NAME [-scope read|write] [-rate R -burst B] [-db FILE|URL]
  tutorials keys set-limit ID (-rate R -burst B | -rate 0 | -default) [-db FILE|URL]
  tutorials keys list [-db FILE|URL]
  tutorials keys revoke ID [-db FILE|URL]
  tutorials backup [-db FILE|URL] [-force] FILE
  tutorials copy FROM TO
  tutorials version
`

// run is the whole program, with the outside world passed in, so that tests
// can run it as it is: arguments, environment and output are parameters, and
// cancelling ctx stops a server.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) { // -h or -help on any command
		fmt.Fprint(stdout, usageText)
		return nil
	}
	return err
}

// dispatch runs the command args names.
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, getenv, stderr)
	case "keys":
		if len(args) == 0 {
			return usagef("keys needs a subcommand: create, set-limit, list or revoke")
		}
		switch sub, args := args[0], args[1:]; sub {
		case "create":
			return runKeysCreate(ctx, args, getenv, stdout)
		case "set-limit":
			return runKeysSetLimit(ctx, args, getenv, stdout)
		case "list":
			return runKeysList(ctx, args, getenv, stdout)
		case "revoke":
			return runKeysRevoke(ctx, args, getenv, stdout)
		default:
			return usagef("unknown keys subcommand %q: want create, set-limit, list or revoke", sub)
		}
	case "backup":
		return runBackup(ctx, args, getenv, stdout)
	case "copy":
		return runCopy(ctx, args, stdout)
	case "version":
		fmt.Fprintln(stdout, "tutorials", buildVersion())
		return nil
	case "help":
		fmt.Fprint(stdout, usageText)
		return nil
	default:
		return usagef("unknown command %q (try tutorials help)", cmd)
	}
}

// ---- Configuration ----

// config is every setting of the server. Each has a flag and an environment
// variable; the flag wins over the variable, which wins over the default.
type config struct {
	addr       string
	db         string
	rate       float64
	burst      int
	logFormat  string
	trustProxy bool
	// corsOrigins are the browser origins allowed to call the API, each
	// exactly as a browser sends it in Origin: "https://app.example.com".
	// None (the default) means no CORS headers at all.
	corsOrigins []string
	// https, when it asks for HTTPS (internal/https), makes addr serve
	// HTTPS and its HTTPAddr plain HTTP; otherwise nothing changes.
	https https.Config
}

// newFlagSet returns a flag set that reports errors as a usageError of one
// line instead of printing the usage text.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args, turning a bad flag into a usageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err // run prints the usage
		}
		return usagef("%s: %v", fs.Name(), err)
	}
	return nil
}

// dbFlag adds -db, which every command takes, defaulting to TUTORIALS_DB,
// else DATABASE_URL (the convention of hosting platforms), else
// tutorials.db.
func dbFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	def := getenv("TUTORIALS_DB")
	if def == "" {
		def = getenv("DATABASE_URL")
	}
	if def == "" {
		def = "tutorials.db"
	}
	return fs.String("db", def, "SQLite database file, or postgres:// URL")
}

// serveEnv names the environment variable of each flag of serve (-db's is
// in dbFlag). A variable that is set replaces the flag's default; a flag
// given on the command line beats both.
var serveEnv = [][2]string{
	{"addr", "TUTORIALS_ADDR"},
	{"rate", "TUTORIALS_RATE"},
	{"burst", "TUTORIALS_BURST"},
	{"log-format", "TUTORIALS_LOG_FORMAT"},
	{"trust-proxy", "TUTORIALS_TRUST_PROXY"},
	{"cors-origins", "TUTORIALS_CORS_ORIGINS"},
	{"domain", "TUTORIALS_DOMAIN"},
	{"http-addr", "TUTORIALS_HTTP_ADDR"},
	{"cert-dir", "TUTORIALS_CERT_DIR"},
	{"acme-directory", "TUTORIALS_ACME_DIRECTORY"},
	{"acme-email", "TUTORIALS_ACME_EMAIL"},
	{"tls-cert", "TUTORIALS_TLS_CERT"},
	{"tls-key", "TUTORIALS_TLS_KEY"},
}

// parseServeConfig reads the serve command's flags over its environment.
func parseServeConfig(args []string, getenv func(string) string) (config, error) {
	var cfg config
	var corsOrigins, domains string
	fs := newFlagSet("serve")
	fs.StringVar(&cfg.addr, "addr", ":8080", "address to listen on")
	db := dbFlag(fs, getenv)
	fs.Float64Var(&cfg.rate, "rate", 10, "requests per second per key; 0 turns limiting off")
	fs.IntVar(&cfg.burst, "burst", 20, "requests a key may make at once")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&cfg.trustProxy, "trust-proxy", false,
		"behind a reverse proxy: take the client address from X-Forwarded-For")
	fs.StringVar(&corsOrigins, "cors-origins", "", "comma-separated origins a browser may call the API from")
	fs.StringVar(&domains, "domain", "", "serve HTTPS for these comma-separated names, with certificates from ACME")
	fs.StringVar(&cfg.https.HTTPAddr, "http-addr", "", "with HTTPS: the plain-HTTP address, for ACME and redirects (default :80)")
	fs.StringVar(&cfg.https.CertDir, "cert-dir", "", "with -domain: where certificates are kept (default: certs beside -db)")
	fs.StringVar(&cfg.https.ACMEDirectory, "acme-directory", "", "with -domain: the ACME server's directory URL (default: Let's Encrypt)")
	fs.StringVar(&cfg.https.ACMEEmail, "acme-email", "", "with -domain: an address the CA may write to about your certificates")
	fs.StringVar(&cfg.https.CertFile, "tls-cert", "", "serve HTTPS with this certificate file (PEM, with its chain)")
	fs.StringVar(&cfg.https.KeyFile, "tls-key", "", "the private key of -tls-cert (PEM)")

	if port := getenv("PORT"); port != "" { // the convention of most hosting platforms
		fs.Set("addr", ":"+port)
	}
	for _, e := range serveEnv {
		if v := getenv(e[1]); v != "" {
			if err := fs.Set(e[0], v); err != nil {
				return cfg, usagef("%s: %q is not a valid -%s", e[1], v, e[0])
			}
		}
	}
	if err := parseFlags(fs, args); err != nil {
		return cfg, err
	}
	// Visit sees the flags given, and those the environment set.
	addrChosen := false
	fs.Visit(func(f *flag.Flag) { addrChosen = addrChosen || f.Name == "addr" })

	cfg.db = *db
	var err error
	if cfg.https.Domains, err = https.ParseDomains(domains); err != nil {
		return cfg, usagef("%v", err)
	}
	if err := cfg.https.Check(); err != nil {
		return cfg, usagef("%v", err)
	}
	// HTTPS serves on its own port, unless an address was chosen; ACME's
	// certificates are kept beside the database, which the service's user
	// can already write (with systemd, its StateDirectory).
	if cfg.https.On() && !addrChosen {
		cfg.addr = ":443"
	}
	if len(cfg.https.Domains) > 0 && cfg.https.CertDir == "" {
		cfg.https.CertDir = filepath.Join(filepath.Dir(cfg.db), "certs")
		if isPostgresURL(cfg.db) { // a database URL has no directory
			cfg.https.CertDir = "certs"
		}
	}
	if cfg.corsOrigins, err = cors.ParseOrigins(corsOrigins); err != nil {
		return cfg, usagef("-cors-origins: %v", err)
	}

	switch {
	case fs.NArg() > 0:
		return cfg, usagef("serve takes no arguments, got %q", fs.Arg(0))
	case cfg.logFormat != "text" && cfg.logFormat != "json":
		return cfg, usagef("-log-format must be text or json, not %q", cfg.logFormat)
	case !(cfg.rate >= 0) || math.IsInf(cfg.rate, 1): // NaN fails every comparison
		return cfg, usagef("-rate must be a number, 0 or more")
	case cfg.burst < 1:
		return cfg, usagef("-burst must be at least 1")
	}
	return cfg, nil
}

// ---- serve ----

// Timeouts of the HTTP server. Without them one slow client per connection
// can hold the server's sockets forever (slowloris).
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10

	// shutdownTimeout is how long requests in flight get to finish.
	shutdownTimeout = 10 * time.Second
	// saveUsageEvery is how often last_used_at reaches the database.
	saveUsageEvery = time.Minute
	// releaseIdleEvery is how often the server looks whether its caches
	// have gone unused long enough to let go of them: see releaseIfIdle.
	releaseIdleEvery = time.Second
	// logFlushEvery is how late a request line may reach the log: see
	// internal/logbuf.
	logFlushEvery = 100 * time.Millisecond
)

// newHTTPServer wraps handler in an http.Server with the limits above.
// Tests of slow clients shorten a timeout on the value it returns.
func newHTTPServer(handler http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// runServe is the serve command: it wires the server, starts its
// background jobs and serves until ctx is cancelled (or the listener
// fails). Then it shuts down in order: the connections closed once the
// requests in flight are answered, the jobs stopped, last_used_at saved,
// the database closed, the log written out.
func runServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, getenv)
	if err != nil {
		return err
	}
	logOut := logbuf.New(stderr)
	defer logOut.Flush() // whatever the way out, after the last line
	stopFlushing := every(logFlushEvery, func() { logOut.Flush() })
	defer stopFlushing()
	logger := newLogger(logOut, cfg.logFormat)

	store, err := OpenStore(ctx, cfg.db)
	if err != nil {
		return err
	}
	defer store.Close() // for the early returns; Close is idempotent

	usage := lastused.New()
	api := newServer(cfg, logger, store, usage, time.Now)
	srv := newHTTPServer(api, logger)
	// Listen before logging, so that the log shows the real address (with
	// -addr :0, the port the system chose), and before the first key is
	// made: a key shown by a server that then fails to start would be lost.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	// With -domain or -tls-cert, ln becomes a TLS listener and front holds
	// the plain-HTTP one; without, front is nil and does nothing.
	refuse := func(w http.ResponseWriter, r *http.Request, status int) {
		writeError(w, r, &apiError{status, "HTTPS required"})
	}
	around := func(h http.Handler) http.Handler { return logRequests(logger, h) }
	ln, front, err := https.Setup(cfg.https, srv, ln, logger, refuse, around)
	if err != nil {
		return err
	}
	if err := bootstrapKey(ctx, store, displayDB(cfg.db), stderr, logger); err != nil {
		ln.Close()
		front.Close()
		return err
	}
	listening := append([]any{"addr", ln.Addr().String()}, front.LogAttrs()...)
	logger.Info("listening", append(listening, "db", displayDB(cfg.db), "version", buildVersion())...)

	stopSaving := every(saveUsageEvery, func() {
		// A save cut short by the shutdown is no failure: the last save,
		// below, writes what it could not.
		if err := usage.Save(ctx, store.SaveLastUsed); err != nil && ctx.Err() == nil {
			logger.Error("saving key usage", "error", err)
		}
	})
	defer stopSaving()
	stopReleasing := every(releaseIdleEvery, api.releaseIfIdle)
	defer stopReleasing()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	front.Start(ctx, served)
	var serveErr error
	select {
	case serveErr = <-served: // Serve only returns early on a listener failure
	case <-ctx.Done():
	}

	logger.Info("shutting down", "timeout", shutdownTimeout)
	// ctx may be cancelled already: the shutdown gets a context of its own.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// A request still running after the grace period is cut off: the
		// contract gives requests in flight 10 s, not forever. That is no
		// failure of the shutdown itself.
		logger.Warn("requests still running after the grace period were cut off", "error", err)
		srv.Close()
	}
	front.Shutdown(shutdownCtx)
	stopReleasing()
	stopSaving()
	// The shutdown context may be spent by now: the last save gets its own.
	saveCtx, cancelSave := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancelSave()
	if err := usage.Save(saveCtx, store.SaveLastUsed); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("saving key usage: %w", err))
	}
	if err := store.Close(); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("closing database: %w", err))
	}
	if serveErr != nil {
		return serveErr
	}
	logger.Info("stopped")
	return nil
}

// every runs job every period in a goroutine of its own, until the stop it
// returns is called, so that runServe ends each background job in the
// order it needs. stop waits for a job under way to finish, so that what
// follows (the last save, closing the database) never runs beside it.
func every(period time.Duration, job func()) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(period)
		defer ticker.Stop()
		for {
			select {
			case <-ticker.C:
				job()
			case <-quit:
				return
			}
		}
	}()
	return sync.OnceFunc(func() {
		close(quit)
		<-done
	})
}

// bootstrapKey makes sure a fresh install can be used. When no key is
// active and stderr is a terminal (a person ran the server), it creates one
// named "default" and shows it there, once. Otherwise stderr is a log (a
// service manager's journal, a log collector), where a key must never go:
// then it makes none and logs how to make one.
func bootstrapKey(ctx context.Context, store Store, db string, stderr io.Writer, logger *slog.Logger) error {
	ok, err := store.HasActiveKey(ctx)
	if err != nil || ok {
		return err
	}
	if !isTerminal(stderr) {
		logger.Warn("no active API key: every request will be refused until you create one with: tutorials keys create -name NAME -db DB",
			"db", db)
		return nil
	}
	key, _, err := issueKey(ctx, store, APIKey{Name: "default", Scope: scopeWrite, CreatedAt: time.Now()})
	if err != nil {
		return fmt.Errorf("create the first key: %w", err)
	}
	fmt.Fprintf(stderr, "\nNo active API key yet, so one was created (name \"default\", scope write):\n\n"+
		"    %s\n\nSave it now: it will not be shown again.\n\n", key)
	return nil
}

// isTerminal reports whether w is a terminal, where a person reads what is
// written, rather than a file, a pipe or a log.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && isatty.IsTerminal(f.Fd())
}

// newLogger returns the server's logger, writing to out in format (text or
// json). A line of level WARN or above is written out at once, with the
// lines gathered before it.
func newLogger(out *logbuf.Buffer, format string) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(out, nil)
	if format == "json" {
		h = slog.NewJSONHandler(out, nil)
	}
	return slog.New(out.FlushAtWarn(h))
}

// ---- backup ----

func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("backup")
	db := dbFlag(fs, getenv)
	force := fs.Bool("force", false, "replace FILE if it exists")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("backup takes one file to write the copy to (flags go before it)")
	}
	dest := fs.Arg(0)
	store, err := openExisting(ctx, *db)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Backup(ctx, dest, *force); errors.Is(err, ErrBackupExists) {
		return fmt.Errorf("%s already exists (use -force to replace it)", dest)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", displayDB(*db), dest)
	return nil
}

// ---- version ----

// buildVersion is the version set with -ldflags, else the module version and
// commit the Go toolchain recorded in the binary.
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v + " " + info.GoVersion
}
