// The tests of the cursor's form; what the list does with a cursor, good or
// bad, is tested through the API in the root package.
package cursor

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEncodeDecode(t *testing.T) {
	for _, c := range []Cursor{
		{Sort: "title", Key: "Go, \"quoted\" and ünïcode 🦫", ID: 7},
		{Sort: "-published_at", Key: "2026-11-24T21:17:33Z", ID: 1 << 62},
		{Sort: "", Key: "", ID: 1},
	} {
		s := Encode(c)
		got, err := Decode(s)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", c, err)
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("Decode(Encode(c)) (-want +got):\n%s", diff)
		}
	}
	if got, want := Encode(Cursor{"title", "ab", 1}), base64.RawURLEncoding.EncodeToString([]byte(`["title","ab",1]`)); got != want {
		t.Errorf("Encode = %q, want %q: base64url of [sort, key, id]", got, want)
	}
}

func TestDecodeRefuses(t *testing.T) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		"", "!!", base64.URLEncoding.EncodeToString([]byte(`["title","ab",1]`)), // padded
		b64(`["title","ab"]`), b64(`["title","ab",1,2]`), b64(`{"sort":"title"}`),
		b64(`["title","ab",0]`), b64(`["title","ab",1.5]`), b64(`["title",3,1]`),
		b64("[\"title\",\"\xff\",1]"), b64(`["title","` + strings.Repeat("a", MaxLen) + `",1]`),
	} {
		if c, err := Decode(s); err != ErrInvalid {
			t.Errorf("Decode(%q) = %+v, %v; want ErrInvalid", s, c, err)
		}
	}
}
