package validator

// These tests hold the validator to its rules: the first problem of each
// field, in the order checked.

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidator(t *testing.T) {
	type check struct {
		ok             bool
		field, message string
	}
	tests := []struct {
		name      string
		checks    []check
		wantValid bool
		want      string
	}{
		{"no checks", nil, true, ""},
		{"every check holds", []check{{true, "a", "a is bad"}, {true, "b", "b is bad"}}, true, ""},
		{"one problem", []check{{true, "a", "a is bad"}, {false, "b", "b is bad"}}, false, "b is bad"},
		{"problems in the order found", []check{{false, "b", "b is bad"}, {false, "a", "a is bad"}}, false, "b is bad; a is bad"},
		{"only the first problem of a field", []check{{false, "a", "a is missing"}, {false, "a", "a is too long"}, {false, "b", "b is bad"}}, false, "a is missing; b is bad"},
		{"a held check does not hide a later problem", []check{{true, "a", "a is missing"}, {false, "a", "a is too long"}}, false, "a is too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := New()
			for _, c := range tt.checks {
				v.Check(c.ok, c.field, c.message)
			}
			if got := v.Valid(); got != tt.wantValid {
				t.Errorf("Valid() = %v, want %v", got, tt.wantValid)
			}
			if diff := cmp.Diff(tt.want, v.Message()); diff != "" {
				t.Errorf("Message() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestZeroValidatorIsReady(t *testing.T) {
	var v Validator
	v.Check(false, "a", "a is bad")
	if v.Valid() || v.Message() != "a is bad" {
		t.Errorf("zero Validator after one problem: Valid() = %v, Message() = %q", v.Valid(), v.Message())
	}
}
