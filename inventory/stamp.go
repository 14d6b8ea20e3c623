package inventory

import (
	"encoding/json"
	"time"

	"github.com/reckon-dev/reckon/discovery"
)

// Stamp is a point in time as Unix nanoseconds: a third of a time.Time's
// size, which matters at a dozen per device and a million devices. In JSON
// it is an RFC 3339 time, like time.Time.
type Stamp int64

// StampOf converts t; the zero time is the zero Stamp.
func StampOf(t time.Time) Stamp {
	if t.IsZero() {
		return 0
	}
	return Stamp(t.UnixNano())
}

func st(o *discovery.Observation) Stamp { return StampOf(o.Time) }

// Time converts s back, in UTC.
func (s Stamp) Time() time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(s)).UTC()
}

func (s Stamp) Before(u Stamp) bool       { return s < u }
func (s Stamp) After(u Stamp) bool        { return s > u }
func (s Stamp) Equal(u Stamp) bool        { return s == u }
func (s Stamp) IsZero() bool              { return s == 0 }
func (s Stamp) Sub(u Stamp) time.Duration { return time.Duration(s - u) }
func (s Stamp) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 32)
	b = append(b, '"')
	b = s.Time().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

func (s *Stamp) UnmarshalJSON(b []byte) error {
	var t time.Time
	if err := json.Unmarshal(b, &t); err != nil {
		return err
	}
	*s = StampOf(t)
	return nil
}
