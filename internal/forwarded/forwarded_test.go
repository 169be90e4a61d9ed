// The tests of the client's address and origin: what -trust-proxy rests
// on, that a client cannot choose its own address by forging a header.
package forwarded

import (
	"net/http/httptest"
	"testing"
)

func TestClientAddr(t *testing.T) {
	tests := []struct {
		name       string
		remote     string
		xff        []string
		trustProxy bool
		want       string
	}{
		{"IPv4", "192.0.2.1:4000", nil, false, "192.0.2.1"},
		{"header ignored unless trusted", "192.0.2.1:4000", []string{"203.0.113.9"}, false, "192.0.2.1"},
		{"trusted: the last entry", "10.0.0.1:4000", []string{"198.51.100.1, 203.0.113.9"}, true, "203.0.113.9"},
		{"trusted: the last of several lines", "10.0.0.1:4000", []string{"198.51.100.1", "203.0.113.9 "}, true, "203.0.113.9"},
		{"trusted but no header", "10.0.0.1:4000", nil, true, "10.0.0.1"},
		{"trusted but not an address", "10.0.0.1:4000", []string{"203.0.113.9, unknown"}, true, "10.0.0.1"},
		{"IPv6 counts by its /64", "[2001:db8:1:2:3:4:5:6]:4000", nil, false, "2001:db8:1:2::/64"},
		{"same /64, same bucket", "[2001:db8:1:2:ffff::1]:4000", nil, false, "2001:db8:1:2::/64"},
		{"IPv4 in IPv6 is IPv4", "[::ffff:192.0.2.1]:4000", nil, false, "192.0.2.1"},
		{"IPv6 from the proxy", "10.0.0.1:4000", []string{"2001:db8::1"}, true, "2001:db8::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientAddr(r, tt.trustProxy); got != tt.want {
				t.Errorf("ClientAddr = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzClientAddr holds ClientAddr to the promises -trust-proxy rests on:
// without it the header changes nothing; with it, entries a client forges
// in front of the proxy's own change nothing either.
func FuzzClientAddr(f *testing.F) {
	f.Fuzz(func(t *testing.T, remote, xff string, trust bool) {
		addr := func(headers ...string) string {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = remote
			for _, h := range headers {
				r.Header.Add("X-Forwarded-For", h)
			}
			return ClientAddr(r, trust)
		}
		got := addr(xff)
		if !trust && got != addr() {
			t.Fatalf("without -trust-proxy, X-Forwarded-For %q changed the address from %q to %q", xff, addr(), got)
		}
		if forged := addr("192.0.2.66, " + xff); forged != got {
			t.Fatalf("a forged first entry changed the address from %q to %q (header %q)", got, forged, xff)
		}
		if forged := addr("192.0.2.66", xff); forged != got {
			t.Fatalf("a forged earlier header changed the address from %q to %q (header %q)", got, forged, xff)
		}
	})
}
