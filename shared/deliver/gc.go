package deliver

import (
	"math"
	"runtime/debug"
	"strconv"
)

// GCPercent is the GOGC TuneGC sets. A batch keeps a large live heap (the records and their
// payloads) while it is delivered; collecting whenever the heap doubles cost about 15% of the
// benchmark's wall time, collecting at three times the live heap does not, and the 10,000-record
// batch of 1 KiB payloads stays well within 128 MiB.
const GCPercent = 200

// MemoryLimitShare is the part of the function's memory TuneGC sets as the soft memory limit.
const MemoryLimitShare = 0.8

// TuneGC sets the delivery process's garbage collector: GOGC to GCPercent unless GOGC is set,
// and a soft memory limit of MemoryLimitShare of the function's memory
// (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MiB) unless GOMEMLIMIT is set, so the collector works
// harder as the function nears its memory instead of the function running out. It returns the
// settings in force; a limit of math.MaxInt64 means none.
func TuneGC(getenv func(string) string) (gcPercent int, memoryLimit int64) {
	percent, limit := gcSettings(getenv)
	if percent > 0 {
		debug.SetGCPercent(percent)
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	gcPercent = debug.SetGCPercent(-1)
	debug.SetGCPercent(gcPercent)
	return gcPercent, debug.SetMemoryLimit(-1)
}

// gcSettings returns the GOGC and memory limit TuneGC sets; 0 leaves one as it is.
func gcSettings(getenv func(string) string) (percent int, limit int64) {
	if getenv("GOGC") == "" {
		percent = GCPercent
	}
	mib, err := strconv.ParseInt(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 10, 64)
	if getenv("GOMEMLIMIT") == "" && err == nil && mib > 0 && mib < math.MaxInt64>>21 {
		limit = int64(float64(mib<<20) * MemoryLimitShare)
	}
	return percent, limit
}
