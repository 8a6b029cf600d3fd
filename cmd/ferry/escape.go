package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/status"
)

// safe makes text that came from a server (file names, symlink targets,
// peers, error messages, model descriptions) harmless to print to a
// terminal. A string of printable characters is returned as it is, so
// ordinary names stay readable; one holding anything else (a newline,
// a tab, an escape sequence, another control or format character such as
// a bidirectional override, or bytes that are not UTF-8), or starting
// with a double quote, is returned Go-quoted by strconv.Quote: "a\nb".
// A quoted name can then neither forge a line nor drive the terminal,
// and one that starts with a quote is never read as a plain name.
// --json output needs none of this: protojson escapes every string.
func safe(s string) string {
	if needsQuote(s) {
		return strconv.Quote(s)
	}
	return s
}

func needsQuote(s string) bool {
	if !utf8.ValidString(s) || strings.HasPrefix(s, `"`) {
		return true
	}
	return strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}

// errorText is what main prints for err: a gRPC status as "message
// (Code)", anything else as its text, both through safe, since either
// may carry the server's words.
func errorText(err error) string {
	if st, ok := status.FromError(err); ok {
		return safe(st.Message()) + " (" + st.Code().String() + ")"
	}
	// The client package names itself ("ferry: ..."), as do the lines
	// main prints: say it once.
	return safe(strings.TrimPrefix(err.Error(), "ferry: "))
}
