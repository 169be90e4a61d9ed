package main

// This file holds the keys commands: create, set-limit, list and revoke,
// run on the database while the server runs or not. A change they make
// counts from the next request (see the key cache in auth.go).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func runKeysCreate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("keys create")
	db := dbFlag(fs, getenv)
	name := fs.String("name", "", "who or what the key is for")
	scope := fs.String("scope", scopeWrite, "read or write")
	limitFlags := addKeyLimitFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("keys create takes no arguments, got %q", fs.Arg(0))
	case strings.TrimSpace(*name) == "":
		return usagef("keys create needs -name")
	case *scope != scopeRead && *scope != scopeWrite:
		return usagef("-scope must be read or write, not %q", *scope)
	}
	limit, err := limitFlags.limit(fs)
	if err != nil {
		return err
	}
	store, err := OpenStore(ctx, *db)
	if err != nil {
		return err
	}
	defer store.Close()
	key, _, err := issueKey(ctx, store, APIKey{Name: strings.TrimSpace(*name), Scope: *scope, Limit: limit, CreatedAt: time.Now()})
	if err != nil {
		return err
	}
	// Only the key, so that scripts can capture it: KEY=$(tutorials keys create -name ci)
	fmt.Fprintln(stdout, key)
	return nil
}

func runKeysList(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("keys list")
	db := dbFlag(fs, getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("keys list takes no arguments, got %q", fs.Arg(0))
	}
	store, err := OpenStore(ctx, *db)
	if err != nil {
		return err
	}
	defer store.Close()
	keys, err := store.APIKeys(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSCOPE\tLIMITS\tACTIVE\tCREATED\tLAST USED")
	for _, k := range keys {
		lastUsed := "never"
		if !k.LastUsedAt.IsZero() {
			lastUsed = formatTime(k.LastUsedAt)
		}
		active := "yes"
		if !k.Active {
			active = "no"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			k.ID, k.Name, k.Prefix, k.Scope, describeLimit(k.Limit), active, formatTime(k.CreatedAt), lastUsed)
	}
	return tw.Flush()
}

func runKeysRevoke(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("keys revoke")
	db := dbFlag(fs, getenv)
	id, err := parseKeyID(fs, args)
	if err != nil {
		return err
	}
	store, err := OpenStore(ctx, *db)
	if err != nil {
		return err
	}
	defer store.Close()
	switch err := store.RevokeKey(ctx, id); {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("no key with id %d", id)
	case errors.Is(err, ErrAlreadyRevoked):
		// Not a failure: the key is revoked, as asked.
		fmt.Fprintf(stdout, "key %d was already revoked\n", id)
	case err != nil:
		return err
	default:
		fmt.Fprintf(stdout, "revoked key %d\n", id)
	}
	return nil
}

func runKeysSetLimit(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("keys set-limit")
	db := dbFlag(fs, getenv)
	limitFlags := addKeyLimitFlags(fs)
	toDefault := fs.Bool("default", false, "follow the server's -rate and -burst again")
	id, err := parseKeyID(fs, args)
	if err != nil {
		return err
	}
	limit, err := limitFlags.limit(fs)
	switch {
	case err != nil:
		return err
	case *toDefault && limit != nil:
		return usagef("keys set-limit: -default takes no -rate or -burst")
	case !*toDefault && limit == nil:
		return usagef("keys set-limit needs -rate R -burst B, -rate 0 (no limit) or -default")
	}
	store, err := OpenStore(ctx, *db)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.SetKeyLimit(ctx, id, limit); errors.Is(err, ErrNotFound) {
		return fmt.Errorf("no key with id %d", id)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key %d: %s, from its next request\n", id, describeLimit(limit))
	return nil
}

// parseKeyID parses the flags of a command that takes one key id, before
// or after its flags ("keys revoke 2 -db FILE" or "keys revoke -db FILE 2").
func parseKeyID(fs *flag.FlagSet, args []string) (int64, error) {
	if err := parseFlags(fs, args); err != nil {
		return 0, err
	}
	if fs.NArg() > 0 {
		rest := fs.Args()
		if err := parseFlags(fs, rest[1:]); err != nil {
			return 0, err
		}
		args = append([]string{rest[0]}, fs.Args()...)
	} else {
		args = nil
	}
	if len(args) != 1 {
		return 0, usagef("%s takes one key id (see tutorials keys list)", fs.Name())
	}
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return 0, usagef("%s: %q is not a key id", fs.Name(), args[0])
	}
	return id, nil
}

// keyLimitFlags are -rate and -burst of the keys commands, which give a key
// its own rate limit.
type keyLimitFlags struct {
	rate  float64
	burst int
}

func addKeyLimitFlags(fs *flag.FlagSet) *keyLimitFlags {
	f := &keyLimitFlags{}
	fs.Float64Var(&f.rate, "rate", 0, "the key's own requests per second; 0 for no limit")
	fs.IntVar(&f.burst, "burst", 0, "the key's own burst: requests it may make at once")
	return f
}

// limit returns the limit the flags give, or nil when neither was given.
// The two go together, but for -rate 0, no limit, which has no burst.
func (f *keyLimitFlags) limit(fs *flag.FlagSet) (*KeyLimit, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	switch {
	case !set["rate"] && !set["burst"]:
		return nil, nil
	case !set["rate"]:
		return nil, usagef("-burst needs -rate")
	case !(f.rate >= 0) || math.IsInf(f.rate, 1): // NaN fails every comparison
		return nil, usagef("-rate must be a number, 0 or more")
	case f.rate == 0 && set["burst"]:
		return nil, usagef("-rate 0 is no limit, and takes no -burst")
	case f.rate == 0:
		return &KeyLimit{}, nil
	case !set["burst"]:
		return nil, usagef("-rate needs -burst, the requests a key may make at once")
	case f.burst < 1:
		return nil, usagef("-burst must be at least 1")
	}
	return &KeyLimit{Rate: f.rate, Burst: f.burst}, nil
}

// describeLimit says what a key's own limit is, for people.
func describeLimit(l *KeyLimit) string {
	switch {
	case l == nil:
		return "server default"
	case l.Rate == 0:
		return "no limit"
	default:
		return fmt.Sprintf("%s/s burst %d", strconv.FormatFloat(l.Rate, 'g', -1, 64), l.Burst)
	}
}
