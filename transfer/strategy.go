package transfer

import (
	"fmt"
	"strings"
)

// Strategy is a way to move bytes from a file to a socket.
type Strategy int

// The strategies. The zero value means "no preference".
const (
	Auto      Strategy = iota // the server's choice
	ReadWrite                 // pread into a buffer, write to the socket
	Mmap                      // mmap a window, write from it
	Sendfile                  // sendfile file to socket
	Splice                    // splice file to pipe to socket
)

var strategyNames = [...]string{"AUTO", "READ_WRITE", "MMAP", "SENDFILE", "SPLICE"}

// Strategies lists every concrete strategy, in the order of the API enum.
var Strategies = []Strategy{ReadWrite, Mmap, Sendfile, Splice}

func (s Strategy) String() string {
	if s < 0 || int(s) >= len(strategyNames) {
		return fmt.Sprintf("Strategy(%d)", int(s))
	}
	return strategyNames[s]
}

// ParseStrategy reads a strategy name, case-insensitively, with or without
// dashes: "splice", "read-write", "READ_WRITE", "auto".
func ParseStrategy(name string) (Strategy, error) {
	n := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	for i, s := range strategyNames {
		if n == s {
			return Strategy(i), nil
		}
	}
	return 0, fmt.Errorf("unknown strategy %q (want auto, read-write, mmap, sendfile or splice)", name)
}
