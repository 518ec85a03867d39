package mirror

import "time"

// SetClock sets the clock of r (tests).
func (r *Router) SetClock(now func() time.Time) { r.now = now }
