package service

import "math"

// rateLimit is a request's rate_limit as the data plane takes it (bytes
// per second, 0 for none). A limit past 63 bits is kept as the largest
// that fits: it means no limit of its own, and the server's ceiling
// (Config.Data.MaxRate) still applies.
func rateLimit(v uint64) int64 {
	return int64(min(v, math.MaxInt64))
}
