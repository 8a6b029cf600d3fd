package main

import (
	"flag"
	"fmt"

	"github.com/ferrydev/ferry/service"
	"github.com/ferrydev/ferry/transfer"
)

// addAutoFlags registers how the server's own choice of strategy is made;
// the returned func applies them to cfg after Parse.
func addAutoFlags(fs *flag.FlagSet, cfg *service.Config) func() error {
	mode := fs.String("auto", "measure", "how the server picks a strategy when the client leaves it open: measure (per size class, what measured fastest on this host, seeded by a short probe at start-up) or fixed (READ_WRITE under 8 MiB, MMAP from 8 MiB)")
	fs.IntVar(&cfg.Data.AutoExploreEvery, "auto-explore-every", 0, "with --auto=measure, send every n-th auto transfer of a size class with another strategy to keep measuring it (0: 20; -1: never)")
	probe := fs.Bool("auto-probe", true, "with --auto=measure, measure every strategy over loopback in the background at start-up")
	return func() error {
		switch *mode {
		case "measure":
			cfg.Data.Auto = transfer.AutoMeasure
			cfg.Data.AutoProbe, cfg.Data.AutoProbeDir = *probe, cfg.Root
		case "fixed":
			cfg.Data.Auto = transfer.AutoFixed
		default:
			return fmt.Errorf("--auto: want measure or fixed, not %q", *mode)
		}
		if cfg.Data.AutoExploreEvery < -1 {
			return fmt.Errorf("--auto-explore-every: want -1, 0 or more, not %d", cfg.Data.AutoExploreEvery)
		}
		return nil
	}
}
