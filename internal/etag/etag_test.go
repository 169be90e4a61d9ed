// The tests of entity tag lists as If-Match and If-None-Match send them;
// the answers they lead to (304, 412) are tested in the root package.
package etag

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestList(t *testing.T) {
	type tag struct {
		Tag  string
		Weak bool
	}
	tests := []struct {
		header string
		want   []tag
	}{
		{`"a"`, []tag{{`"a"`, false}}},
		{` "a" , W/"b",,"c"`, []tag{{`"a"`, false}, {`"b"`, true}, {`"c"`, false}}},
		{`"a,b", "c"`, []tag{{`"a,b"`, false}, {`"c"`, false}}}, // a comma inside a tag
		{`"a", b, "c"`, []tag{{`"a"`, false}}},                  // stops at the fault
		{`"a`, nil},
		{``, nil},
	}
	for _, tt := range tests {
		var got []tag
		for t, weak := range List(tt.header) {
			got = append(got, tag{t, weak})
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("List(%q) (-want +got):\n%s", tt.header, diff)
		}
	}
}

func TestNoneMatch(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{`"x"`, true},
		{`W/"x"`, true}, // If-None-Match compares weakly
		{`"y", "x"`, true},
		{` * `, true},
		{`"y"`, false},
		{`x`, false},
	}
	for _, tt := range tests {
		if got := NoneMatch(tt.header, `"x"`); got != tt.want {
			t.Errorf("NoneMatch(%q, %q) = %v, want %v", tt.header, `"x"`, got, tt.want)
		}
	}
}
