// Package bearer reads the bearer-token file that ferryd (--auth-token-file)
// and ferry (--token-file) share, so that both sides agree on its format:
// one token, printable ASCII without spaces, trailing newlines ignored.
//
// It does not send, check or compare tokens: the client's per-RPC
// credentials and the server's auth interceptor do that.
package bearer

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ReadFile returns the token held in file, without its trailing newlines
// ("\n" or "\r\n", as editors and `echo` leave them). An empty token, or
// one with spaces or other characters an HTTP/2 header cannot carry, is an
// error that names the file but never shows the token.
func ReadFile(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	tok := strings.TrimRight(string(b), "\r\n")
	if err := check(tok); err != nil {
		return "", fmt.Errorf("token file %s: %w", file, err)
	}
	return tok, nil
}

func check(tok string) error {
	if tok == "" {
		return errors.New("empty")
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("byte %d is %#x; want one line of printable ASCII without spaces", i, c)
		}
	}
	return nil
}
