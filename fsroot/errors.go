package fsroot

import "errors"

// Sentinel errors. Functions in this package wrap them with %w; callers
// test them with errors.Is.
var (
	// ErrInvalidPath: a path that is empty, absolute, contains NUL, or
	// climbs out of the root with "..".
	ErrInvalidPath = errors.New("invalid path")
	// ErrEscapes: a path that resolves outside the root (through a
	// symlink or a magic link).
	ErrEscapes = errors.New("path escapes the served root")
	// ErrNotFound: no such file beneath the root.
	ErrNotFound = errors.New("no such file")
	// ErrPermission: the server may not open the file.
	ErrPermission = errors.New("permission denied")
	// ErrExists: a destination that exists where none may.
	ErrExists = errors.New("destination exists")
	// ErrIsDir: a directory where a file is needed.
	ErrIsDir = errors.New("is a directory")
	// ErrNotRegular: a device, socket or FIFO where a file is needed.
	ErrNotRegular = errors.New("not a regular file")
	// ErrNotDir: a file where a directory is needed.
	ErrNotDir = errors.New("not a directory")
	// ErrNoSpace: the destination's file system has too little free
	// space for what is about to land there (CheckSpace).
	ErrNoSpace = errors.New("not enough free space")
	// ErrTooDeep: a recursive listing of a tree deeper than MaxListDepth.
	ErrTooDeep = errors.New("directory tree too deep to list")
)
