package alert

// SetBeforeMove makes s call f between a move's read and its update.
func SetBeforeMove(s *Store, f func()) { s.beforeMove = f }
