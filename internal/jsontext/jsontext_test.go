// The tests of what jsontext tells about JSON text; the messages a client
// gets for such bodies are tested through the API in the root package.
package jsontext

import "testing"

func TestLoneSurrogate(t *testing.T) {
	tests := []struct {
		json string
		want bool
	}{
		{`"plain"`, false},
		{`"\ud83e\uddab"`, false}, // a pair: 🦫
		{`"\ud83e"`, true},        // a high half alone
		{`"\udd8b\ud83e"`, true},  // a low half first
		{`"\ud83e\u0041"`, true},  // a high half and no low one
		{`"\\ud83e"`, false},      // an escaped backslash, then text
		{`"\\\ud83e"`, true},
		{`{"a":"\ud83e\uddab","b":"\udc00"}`, true},
		{`"\u00e9"`, false},
	}
	for _, tt := range tests {
		if got := LoneSurrogate([]byte(tt.json)); got != tt.want {
			t.Errorf("LoneSurrogate(%s) = %v, want %v", tt.json, got, tt.want)
		}
	}
}

func TestKind(t *testing.T) {
	for json, want := range map[string]string{
		` {}`: "object", "\n[1]": "an array", `"s"`: "a string", `true`: "a boolean",
		`false`: "a boolean", `null`: "null", `-1.5`: "a number", `  `: "empty",
	} {
		if got := Kind([]byte(json)); got != want {
			t.Errorf("Kind(%q) = %q, want %q", json, got, want)
		}
	}
}
