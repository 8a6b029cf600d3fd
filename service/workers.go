package service

// workers runs functions on goroutines kept from one to the next. A
// session request's report is marshalled and sent deep down protobuf's
// and grpc-go's call chains; on a new goroutine per request the stack
// grew, and was copied, every time (7% of the CPU of a 4 KiB session get
// in BenchmarkSession4KiB). A kept goroutine's stack has already grown.
// Idle workers wait for the next function until close.
type workers struct {
	next chan func() // unbuffered: a send succeeds only when a worker is idle
	quit chan struct{}
}

func newWorkers() *workers {
	return &workers{next: make(chan func()), quit: make(chan struct{})}
}

// run runs f on an idle worker, or on a new one when none is idle, so f
// never waits for another function to end.
func (w *workers) run(f func()) {
	select {
	case w.next <- f:
	default:
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	for {
		f()
		select {
		case f = <-w.next:
		case <-w.quit:
			return
		}
	}
}

// close ends the idle workers, and each busy one once its function
// returns. run after close still runs its function.
func (w *workers) close() { close(w.quit) }
