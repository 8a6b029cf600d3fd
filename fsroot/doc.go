// Package fsroot is the file system beneath a served root: it opens,
// lists and walks files beneath a directory, and lands received files and
// trees there whole.
//
// Names are resolved in the kernel with openat2(RESOLVE_BENEATH), so that
// "..", absolute symlinks and magic links cannot leave the root (Root),
// and a tree is walked and built through no symlink at all (Tree,
// TreeLanding). A received file is written aside, as "<name>.partial" or
// an unnamed O_TMPFILE file, made durable with fsync and only then given
// its name (Destination.Commit); a failure leaves nothing behind. Errors
// wrap the package's sentinels (ErrNotFound, ErrEscapes, ...) and name
// only paths relative to the root, never host paths.
//
// What it does not do: it knows nothing of the data channel, tickets,
// strategies, gRPC or the API, and imports nothing of Ferry's (a test
// keeps it so); it does not decide which caller may read which file; it
// moves no bytes over a network. It is Linux-only: openat2, O_TMPFILE,
// renameat2 and syncfs are Linux system calls.
package fsroot
