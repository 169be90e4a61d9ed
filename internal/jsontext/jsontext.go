// Package jsontext tells two things about valid JSON text that
// encoding/json does not:
//
//	jsontext.Kind(body)          // "object", "an array", "a string", …
//	jsontext.LoneSurrogate(body) // a \u escape of half a UTF-16 pair?
//
// Both take JSON that json.Valid has accepted, and look at bytes only.
package jsontext

import (
	"bytes"
	"strconv"
	"unicode/utf16"
)

// Kind names the kind of a valid JSON value from its first character, as
// a message to a client would: "object", "an array", "a string", "a
// boolean", "null", "a number", or "empty" for no value at all.
func Kind(v []byte) string {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return "empty"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// LoneSurrogate reports whether valid JSON holds a \u escape of a UTF-16
// surrogate that is not one half of a pair, "\ud800" say: no character.
// encoding/json quietly decodes one as U+FFFD, so the text stored would not
// be the text sent (RFC 8259, 8.2). In valid JSON a backslash only ever
// starts an escape inside a string, so the scan needs no parser.
func LoneSurrogate(body []byte) bool {
	surrogate := func(i int) (rune, bool) { // the escape \uXXXX at body[i:]
		if i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(body[i+2:i+6]), 16, 16)
		return rune(n), err == nil && utf16.IsSurrogate(rune(n))
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		r, ok := surrogate(i)
		if !ok {
			i++ // the escaped character, a backslash perhaps
			continue
		}
		low, ok := surrogate(i + 6)
		if r > 0xdbff || !ok || low < 0xdc00 {
			return true // a low half first, or a high half alone
		}
		i += 11
	}
	return false
}
