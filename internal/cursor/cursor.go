// Package cursor writes and reads the list's cursors: a place in a sorted
// list, as the opaque value of a query parameter.
//
//	s := cursor.Encode(cursor.Cursor{Sort: "title", Key: "Go", ID: 7})
//	c, err := cursor.Decode(s) // err is ErrInvalid for anything else
//
// A cursor is base64url (no padding) of the JSON array [sort, key, id]:
// the sort it belongs to, the item's sort key and its id, which breaks
// ties. Opaque to clients, which only ever copy it from a link, but plain
// to a person debugging one. Anyone may write one by hand: it is only a
// place in the list, and the caller takes it as such.
package cursor

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// MaxLen bounds a cursor's length: a key of 200 characters of four bytes
// each, its JSON and its base64 fit in it.
const MaxLen = 2048

// ErrInvalid is a string that is not a cursor.
var ErrInvalid = errors.New("cursor is not valid")

// Cursor is the place just after the item with sort key Key and id ID, in
// the list sorted by Sort.
type Cursor struct {
	Sort string
	Key  string
	ID   int64
}

// Encode writes c as a cursor.
func Encode(c Cursor) string {
	b, _ := json.Marshal([]any{c.Sort, c.Key, c.ID}) // strings and an integer cannot fail to encode
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode reads a cursor made by Encode, or by hand in its form. Its id is
// at least 1; what its sort and key may be is the caller's to check.
func Decode(s string) (Cursor, error) {
	if len(s) > MaxLen {
		return Cursor{}, ErrInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !utf8.Valid(b) {
		return Cursor{}, ErrInvalid
	}
	var fields []json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || len(fields) != 3 {
		return Cursor{}, ErrInvalid
	}
	var c Cursor
	if json.Unmarshal(fields[0], &c.Sort) != nil || json.Unmarshal(fields[1], &c.Key) != nil ||
		json.Unmarshal(fields[2], &c.ID) != nil || c.ID < 1 {
		return Cursor{}, ErrInvalid
	}
	return c, nil
}
