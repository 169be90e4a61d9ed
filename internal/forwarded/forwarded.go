// Package forwarded says who a request comes from and how it reached the
// server, when a reverse proxy may stand between:
//
//	forwarded.ClientAddr(r, trustProxy) // "203.0.113.9", or "2001:db8::/64"
//	forwarded.Origin(r, trustProxy)     // "https://api.example.com"
//
// Behind a proxy the request the server sees is the proxy's, so with
// trustProxy the X-Forwarded- headers the proxy sets say what the client
// used; without it they are ignored, since any client can send them.
package forwarded

import (
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
)

// ClientAddr is the address r comes from, as a client is counted (failed
// authentications, say). With trustProxy it is the last one in
// X-Forwarded-For: the one the proxy itself added. Entries before it were
// written by the client and prove nothing.
//
// An IPv6 client usually holds a whole /64 and could change address on
// every request, so an IPv6 address counts by its /64.
func ClientAddr(r *http.Request, trustProxy bool) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if xff := r.Header.Values("X-Forwarded-For"); trustProxy && len(xff) > 0 {
		last := xff[len(xff)-1]
		last = strings.TrimSpace(last[strings.LastIndexByte(last, ',')+1:])
		if _, err := netip.ParseAddr(last); err == nil {
			host = last
		}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// Origin is the scheme and host a client used to reach the server,
// "https://api.example.com": what makes a link absolute. With trustProxy,
// X-Forwarded-Proto and X-Forwarded-Host say what the client used; a
// forwarded host that is not a plain host[:port] is ignored, since the
// origin goes into a header.
func Origin(r *http.Request, trustProxy bool) string {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if trustProxy {
		if proto := first(r, "X-Forwarded-Proto"); proto == "http" || proto == "https" {
			scheme = proto
		}
		if fh := first(r, "X-Forwarded-Host"); plainHost.MatchString(fh) {
			host = fh
		}
	}
	return scheme + "://" + host
}

// plainHost is a host name, an IPv4 address or a bracketed IPv6 address,
// with a port or without.
var plainHost = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$`)

// first is the first value of header name: the one the proxy nearest the
// client set, when proxies are chained.
func first(r *http.Request, name string) string {
	v, _, _ := strings.Cut(r.Header.Get(name), ",")
	return strings.TrimSpace(v)
}
