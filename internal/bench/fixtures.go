package bench

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// fixtures are the files every path serves, under root.
type fixtures struct {
	root   string
	big    string   // the large file, relative to root
	medium []string // 1 MiB files
	small  []string // 4 KiB files, the first of the directory's
	dir    string   // the directory of 4 KiB files
	files  []string // every file of dir, relative to root
}

const (
	mediumFiles = 32
	smallFiles  = 256
)

// makeFixtures writes random (incompressible) data once, flushes it so
// no writeback runs under the measurements, and reads the large file
// back so it is in the page cache.
func makeFixtures(root string, size int64, dirFiles int) (*fixtures, error) {
	fx := &fixtures{root: root, big: "big.bin", dir: "dir"}
	rng := rand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y'})
	if err := writeRandom(filepath.Join(root, fx.big), size, rng); err != nil {
		return nil, err
	}
	for i := range mediumFiles {
		fx.medium = append(fx.medium, fmt.Sprintf("medium/m%02d.bin", i))
	}
	for i := range dirFiles {
		fx.files = append(fx.files, fmt.Sprintf("dir/f%05d", i))
	}
	fx.small = fx.files[:min(smallFiles, len(fx.files))]
	for _, group := range []struct {
		names []string
		size  int64
	}{{fx.medium, 1 << 20}, {fx.files, 4 << 10}} {
		for _, name := range group.names {
			if err := writeRandom(filepath.Join(root, name), group.size, rng); err != nil {
				return nil, err
			}
		}
	}
	if err := syncFS(root); err != nil {
		return nil, err
	}
	return fx, warm(filepath.Join(root, fx.big))
}

func writeRandom(path string, size int64, rng io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, min(size, 1<<20))
	for left := size; left > 0; left -= int64(len(buf)) {
		buf = buf[:min(left, int64(len(buf)))]
		rng.Read(buf)
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// syncFS flushes the file system that holds dir (syncfs(2)).
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// warm reads path to the end (cat path > /dev/null), so it is cached.
func warm(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	for {
		_, err := f.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
