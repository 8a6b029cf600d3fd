package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	ferryv1 "github.com/ferrydev/ferry/api/ferry/v1"
	"github.com/ferrydev/ferry/client"
)

// treePath pulls the fixture directory with one DownloadTree call (what
// `ferry pull -r` does) into a new directory under destDir: files land
// durably (group commit: syncfs, then link), small files inline in their
// offers, conc at a time over shared data connections. It is the like
// for like of tar c | nc | tar x, which lands files without fsync.
func (n *ferryNode) treePath(dir, destDir string, files, conc int) path {
	r := ferryRow(ferryv1.Strategy_STRATEGY_UNSPECIFIED, "-tree",
		" pull -r → files ("+strconv.Itoa(conc)+" concurrent, durable)")
	return path{rows: []row{r}, run: func(ctx context.Context) ([]Sample, error) {
		out := filepath.Join(destDir, "ferry-tree")
		defer os.RemoveAll(out)
		s, err := metered(n.cpu, selfCPU, func(s *Sample) error {
			rep, err := n.client.DownloadTree(ctx, dir, out, client.TreeOptions{
				Concurrency: conc, InlineMax: client.MaxInline,
			})
			if err != nil {
				return err
			}
			s.Bytes, s.Files = int64(rep.GetBytes()), int(rep.GetFiles())
			if s.Files != files {
				return fmt.Errorf("ferry pull -r: %d files, want %d", s.Files, files)
			}
			s.Note = fmt.Sprintf("%d data connections, %d files inline", rep.GetDataConnections(), rep.GetInlineFiles())
			return nil
		})
		return []Sample{s}, err
	}}
}

// syncPath syncs the fixture directory at the MTIME level into a copy
// that already holds it, unchanged: one SyncTree call that moves no byte.
// The copy is made, untimed, before each round's sync. Its bytes are the
// files matched, not moved; the info row compares its wall time with the
// full pull's.
func (n *ferryNode) syncPath(dir, destDir string, files, conc int) path {
	r := ferryRow(ferryv1.Strategy_STRATEGY_UNSPECIFIED, "-sync",
		" pull -r --sync, unchanged tree (bytes matched, none moved)")
	return path{rows: []row{r}, run: func(ctx context.Context) ([]Sample, error) {
		out := filepath.Join(destDir, "ferry-sync")
		defer os.RemoveAll(out)
		opts := client.TreeOptions{Concurrency: conc, InlineMax: client.MaxInline}
		if _, err := n.client.DownloadTree(ctx, dir, out, opts); err != nil {
			return []Sample{{}}, fmt.Errorf("the copy to sync against: %w", err)
		}
		opts.Sync = ferryv1.SyncLevel_SYNC_LEVEL_MTIME
		s, err := metered(n.cpu, selfCPU, func(s *Sample) error {
			rep, err := n.client.DownloadTree(ctx, dir, out, opts)
			if err != nil {
				return err
			}
			s.Bytes, s.Files = int64(rep.GetUnchangedBytes()), int(rep.GetUnchanged())
			if s.Files != files || rep.GetFiles() != 0 {
				return fmt.Errorf("ferry pull -r --sync of an unchanged tree: %d files unchanged, %d sent; want %d and 0", s.Files, rep.GetFiles(), files)
			}
			s.Note = fmt.Sprintf("%d files sent, %d unchanged, %d data connections", rep.GetFiles(), rep.GetUnchanged(), rep.GetDataConnections())
			return nil
		})
		return []Sample{s}, err
	}}
}
