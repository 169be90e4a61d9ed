// Package validator collects the problems found in a client's input, so that
// a handler can check every rule and report them all at once, in the manner
// of Greenlight's internal/validator.
package validator

import "strings"

// Validator holds the problems found so far: at most one per field, the
// first. So a field's rules can be written as a flat list, each assuming the
// ones before it held (a length is only worth checking of a string), and a
// field that breaks its first rule is not also blamed for the rest.
//
// The zero Validator is ready to use.
type Validator struct {
	problems []problem
}

// problem is one broken rule: the field it is about, and what to tell the
// client.
type problem struct {
	field, message string
}

// New returns an empty Validator.
func New() *Validator {
	return &Validator{}
}

// Check records message as the problem of field, unless ok or field already
// has one.
func (v *Validator) Check(ok bool, field, message string) {
	if ok || v.has(field) {
		return
	}
	v.problems = append(v.problems, problem{field, message})
}

// has reports whether field has a problem.
func (v *Validator) has(field string) bool {
	for _, p := range v.problems {
		if p.field == field {
			return true
		}
	}
	return false
}

// Valid reports whether no rule was broken.
func (v *Validator) Valid() bool {
	return len(v.problems) == 0
}

// Message is every problem, in the order they were found, joined by "; ":
// the order of the checks, so the same input always gets the same words.
func (v *Validator) Message() string {
	messages := make([]string, len(v.problems))
	for i, p := range v.problems {
		messages[i] = p.message
	}
	return strings.Join(messages, "; ")
}
