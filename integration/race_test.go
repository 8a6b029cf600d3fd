//go:build race

package integration

// raceEnabled says the tests run under -race: the binaries are built with
// it as well.
const raceEnabled = true
