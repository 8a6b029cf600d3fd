package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReceiverDiskFull pulls a 4 MiB file where it cannot fit. Into a
// 1 MiB tmpfs: refused before a byte is written, by the free-space check,
// with an error that says so, and nothing left. Into a tmpfs that has
// room when the pull starts and fills up under it (another writer takes
// the space once the partial file holds a byte; the pull is paced so that it
// is still running then): without --resume, exit 1, an error that names
// the partial file and says the device is full, and no file left; with
// --resume, the same error, and the partial file kept with the bytes
// that fitted, which a second --resume, once there is room, continues to
// a byte-exact file. ferryd serves on after each.
func TestReceiverDiskFull(t *testing.T) {
	root := t.TempDir()
	data := writeRandom(t, root, "f.bin", 4<<20)
	d := startFerryd(t, root)

	small := mountTmpfs(t, "size=1m")
	res := ferry(t, "pull", "--server", d.Addr, "f.bin", filepath.Join(small, "f.bin"))
	checkLocalError(t, res, "not enough free space for "+filepath.Join(small, "f.bin"))
	checkEmpty(t, small)
	checkServing(t, d, data)

	// Room for the free-space check (4 MiB and its 16 MiB reserve), then
	// a filler that leaves 1 MiB once the receive has begun.
	dir := mountTmpfs(t, "size=24m")
	dest := filepath.Join(dir, "f.bin")
	fillWhenStarted := func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			// The receiver opens the partial file before it checks the
			// free space, and writes its first byte only after the check:
			// fill once a byte has landed, or the filler races the check.
			if fi, err := os.Stat(dest + ".partial"); err == nil && fi.Size() > 0 {
				var fs unix.Statfs_t
				check(t, unix.Statfs(dir, &fs))
				free := int64(fs.Bavail) * fs.Bsize
				check(t, os.WriteFile(filepath.Join(dir, "filler"), make([]byte, max(free-(1<<20), 0)), 0o644))
				return
			}
		}
		t.Fatal("the pull never wrote to its partial file")
	}
	pull := func(args ...string) result {
		t.Helper()
		os.Remove(filepath.Join(dir, "filler"))
		done := make(chan result, 1)
		go func() {
			done <- ferry(t, append([]string{"pull", "--server", d.Addr, "--limit-rate", "2MiB"}, args...)...)
		}()
		fillWhenStarted()
		return <-done
	}

	res = pull("f.bin", dest)
	checkLocalError(t, res, "write "+dest+".partial: no space left on device")
	os.Remove(filepath.Join(dir, "filler"))
	checkEmpty(t, dir)
	checkServing(t, d, data)

	res = pull("--resume", "f.bin", dest)
	checkLocalError(t, res, "write "+dest+".partial: no space left on device")
	if !strings.Contains(res.stderr, "kept "+dest+".partial") {
		t.Errorf("ferry pull --resume into a full disk: stderr %q does not say it kept the partial file", res.stderr)
	}
	kept, err := os.ReadFile(dest + ".partial")
	check(t, err)
	if len(kept) == 0 || len(kept) >= len(data) {
		t.Fatalf("partial file kept by --resume holds %d bytes, want some of the %d", len(kept), len(data))
	}
	sameBytes(t, "kept partial file", kept, data[:len(kept)])
	checkServing(t, d, data)

	os.Remove(filepath.Join(dir, "filler"))
	res = ferryOK(t, "pull", "--server", d.Addr, "--resume", "--json", "f.bin", dest)
	checkReportRange(t, res.stdout, len(kept), len(data)-len(kept))
	checkFile(t, dest, data)
	noFile(t, dest+".partial")
}

// TestReceiverReadOnly pulls into a read-only file system, with and
// without --resume: exit 1, an error that names the partial file and
// says why, and nothing written. (The tests run as root, for whom no
// permission bits deny a write; a read-only mount does.)
func TestReceiverReadOnly(t *testing.T) {
	root := t.TempDir()
	data := writeRandom(t, root, "f.bin", 1<<20)
	d := startFerryd(t, root)
	dir := mountTmpfs(t, "size=1m")
	check(t, unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""))
	dest := filepath.Join(dir, "f.bin")
	for _, flags := range [][]string{nil, {"--resume"}} {
		args := append(append([]string{"pull", "--server", d.Addr}, flags...), "f.bin", dest)
		res := ferry(t, args...)
		checkLocalError(t, res, dest+".partial: read-only file system")
		checkEmpty(t, dir)
		checkServing(t, d, data)
	}
}

// mountTmpfs mounts a new tmpfs with options on a new directory, which
// the test's cleanup detaches, however the test ends. It needs root, as
// these tests do; without it the test is skipped.
func mountTmpfs(t *testing.T, options string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("ferry-test", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, options); err != nil {
		t.Fatalf("mount -t tmpfs -o %s %s: %v", options, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("umount -l %s: %v", dir, err)
		}
	})
	return dir
}

// checkLocalError requires a pull that failed with exit 1 and an error
// containing want.
func checkLocalError(t *testing.T, res result, want string) {
	t.Helper()
	if res.code != 1 || !strings.Contains(res.stderr, want) {
		t.Errorf("pull: exit %d, stderr %q; want exit 1 and %q", res.code, res.stderr, want)
	}
}

// checkEmpty requires dir to hold nothing.
func checkEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	check(t, err)
	for _, e := range ents {
		t.Errorf("%s holds %s, want nothing", dir, e.Name())
	}
}

// checkServing requires ferryd to serve a pull of f.bin, byte-exact.
func checkServing(t *testing.T, d *ferryd, want []byte) {
	t.Helper()
	res := ferryOK(t, "pull", "--server", d.Addr, "f.bin", "-")
	sameBytes(t, "the next pull", []byte(res.stdout), want)
}
