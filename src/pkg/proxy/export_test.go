package proxy

import "context"

// WaitFills returns once no blob fill runs: every download started so far is stored (or failed). A
// client's response may end before that, as soon as its blob is verified.
func (s *Service) WaitFills(ctx context.Context) error { return s.fills.wait(ctx) }
