package main

// The processes the bench starts and drives: the server, the baseline, and
// what it reads of them (readiness, memory).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a process the bench started and drives.
type server struct {
	cmd     *exec.Cmd
	url     string
	start   time.Time
	logPath string // its log, one line per request
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServer runs the tutorials server on db with rate limiting off (the
// bench is one key making thousands of requests a second). Its log, one
// line per request as in production, goes to a file.
func startServer(bin, db, dir, name string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own copy
	cmd := exec.Command(bin, "serve", "-addr", addr, "-db", db, "-rate", "0")
	cmd.Stdout, cmd.Stderr = log, log
	s := &server{cmd: cmd, url: "http://" + addr, start: time.Now(), logPath: logPath}
	return s, cmd.Start()
}

// startBaseline runs this same program as the baseline server.
func startBaseline(dir string, body []byte) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "baseline-body.json")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "baseline", addr, path)
	cmd.Stderr = os.Stderr
	s := &server{cmd: cmd, url: "http://" + addr, start: time.Now()}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	_, err = s.waitReady("", 10*time.Second)
	return s, err
}

// serveBaseline is the baseline: the most a Go HTTP server can do on this
// machine with a body of that size. No routing, no database, no JSON: the
// body is encoded once, before the first request.
func serveBaseline(addr, bodyPath string) {
	body, err := os.ReadFile(bodyPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	length := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", length)
		w.Write(body)
	})
	fmt.Fprintln(os.Stderr, "baseline:", http.ListenAndServe(addr, h))
	os.Exit(1)
}

// waitReady polls until a GET of page 1 of the list, with key, answers 200,
// and returns how long after the process started that was.
func (s *server) waitReady(key string, limit time.Duration) (time.Duration, error) {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", s.url+"/api/v1/tutorials", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(s.start), nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return 0, fmt.Errorf("%s did not answer within %v", s.url, limit)
}

// get returns the body of a GET that must answer 200.
func (s *server) get(path, key string) ([]byte, error) {
	req, _ := http.NewRequest("GET", s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return body, err
}

// stop ends the process the way systemd would, and waits for it.
func (s *server) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
}

// procStatus reads one field, in kB, of /proc/PID/status.
func (s *server) procStatus(field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// rss is the server's resident memory now; peakRSS its highest since the
// last resetPeak.
func (s *server) rss() int64     { return s.procStatus("VmRSS") }
func (s *server) peakRSS() int64 { return s.procStatus("VmHWM") }

// resetPeak starts the count of peakRSS again (Linux 4.0 and later).
func (s *server) resetPeak() {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.cmd.Process.Pid), []byte("5"), 0)
}
