package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind is what raised an alert.
type Kind string

const (
	KindUnmanaged   Kind = "unmanaged"    // a device the CMDB does not know
	KindDrift       Kind = "drift"        // a configuration change between assessments
	KindCheckFailed Kind = "check_failed" // a policy check failed
	KindStale       Kind = "stale"        // a CMDB record no source has seen for too long
	KindConflict    Kind = "conflict"     // a device matched by several CMDB records, or disagreeing with one
	KindHealth      Kind = "health"       // reckon itself: a sensor, a sweep, the CMDB, the assessment backlog
)

// Valid says whether k is one of the kinds above.
func (k Kind) Valid() bool {
	return slices.Contains([]Kind{KindUnmanaged, KindDrift, KindCheckFailed, KindStale, KindConflict, KindHealth}, k)
}

// Severity is how bad an alert is; the values are the policy's.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Valid says whether s is one of the severities above.
func (s Severity) Valid() bool {
	return slices.Contains([]Severity{SeverityInfo, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}, s)
}

// Condition is the machine's view of an alert.
type Condition string

const (
	Firing  Condition = "firing"
	Cleared Condition = "cleared"
)

// State is the people's view of an alert: where it is in the workflow.
type State string

const (
	StateNew       State = "new"
	StateTriage    State = "triage" // someone took it
	StateEscalated State = "escalated"
	StateClosed    State = "closed"
)

// Valid says whether s is one of the states above.
func (s State) Valid() bool {
	return slices.Contains([]State{StateNew, StateTriage, StateEscalated, StateClosed}, s)
}

// Resolution says why an alert was closed.
type Resolution string

const (
	FalsePositive    Resolution = "false_positive"
	AuthorizedChange Resolution = "authorized_change" // with a change reference
	Fixed            Resolution = "fixed"             // only once the condition has cleared
	TruePositive     Resolution = "true_positive"
	Duplicate        Resolution = "duplicate"
	AcceptedRisk     Resolution = "accepted_risk" // with an expiry
)

var resolutions = []Resolution{FalsePositive, AuthorizedChange, Fixed, TruePositive, Duplicate, AcceptedRisk}

// Valid says whether r is one of the resolutions above.
func (r Resolution) Valid() bool { return slices.Contains(resolutions, r) }

// SystemActor is who reckon's own moves are recorded as (a reopen).
const SystemActor = "reckon"

// Signal is what a source reports: a condition firing, or cleared.
type Signal struct {
	Kind Kind `json:"kind"`
	// Severity is needed when firing; a cleared signal may leave it empty.
	Severity Severity `json:"severity,omitempty"`
	AssetID  string   `json:"asset_id,omitempty"`
	CheckID  string   `json:"check_id,omitempty"`
	// Key is the value that tells conditions of one kind on one asset apart:
	// a drift kind and port ("port_opened tcp/23"), a health component
	// ("sensor eth1"). It is compared lower-cased and trimmed.
	Key   string `json:"key,omitempty"`
	Title string `json:"title,omitempty"`
	// Detail is the observation's evidence: before/after, the assessment
	// id, what a check saw. A firing signal's detail becomes the alert's.
	Detail map[string]any `json:"detail,omitempty"`
	// At is when the condition was seen; zero means now.
	At     time.Time `json:"at"`
	Firing bool      `json:"firing"`
}

// Fingerprint names a signal's condition: a sha256 (hex) over its kind,
// asset id, check id (the kind when there is none) and normalised key.
func Fingerprint(s Signal) string {
	check := strings.TrimSpace(s.CheckID)
	if check == "" {
		check = string(s.Kind)
	}
	h := sha256.New()
	for _, part := range []string{string(s.Kind), strings.TrimSpace(s.AssetID), check, normKey(s.Key)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func normKey(k string) string { return strings.ToLower(strings.TrimSpace(k)) }

// observationKeys are detail keys that name an observation rather than
// describe the condition; the detail hash leaves them out, so that the
// identical condition seen by a later assessment hashes the same.
var observationKeys = []string{"assessment_id", "previous_assessment_id", "run_id", "batch_id", "observed_at", "at"}

// detailHash hashes the stable part of a detail: its JSON with the
// observation keys left out (encoding/json sorts map keys).
func detailHash(d map[string]any) string {
	stable := make(map[string]any, len(d))
	for k, v := range d {
		if !slices.Contains(observationKeys, k) {
			stable[k] = v
		}
	}
	b, err := json.Marshal(stable)
	if err != nil {
		b = fmt.Appendf(nil, "%v", stable)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// prepare checks a signal and fills in its defaults: At in UTC at the
// store's precision, a title, a non-nil detail.
func (s Signal) prepare(now time.Time) (Signal, error) {
	if !s.Kind.Valid() {
		return s, fmt.Errorf("unknown alert kind %q", s.Kind)
	}
	if s.Firing && !s.Severity.Valid() {
		return s, fmt.Errorf("%s signal: severity %q is not one of info, low, medium, high, critical", s.Kind, s.Severity)
	}
	if !s.Firing && s.Severity != "" && !s.Severity.Valid() {
		return s, fmt.Errorf("%s signal: unknown severity %q", s.Kind, s.Severity)
	}
	if s.At.IsZero() {
		s.At = now
	}
	s.At = s.At.UTC().Truncate(time.Microsecond)
	s.AssetID, s.CheckID, s.Key = strings.TrimSpace(s.AssetID), strings.TrimSpace(s.CheckID), normKey(s.Key)
	if s.Title = strings.TrimSpace(s.Title); s.Title == "" {
		s.Title = string(s.Kind)
		for _, p := range []string{s.CheckID, s.Key} {
			if p != "" {
				s.Title += " " + p
			}
		}
	}
	if s.Detail == nil {
		s.Detail = map[string]any{}
	}
	return s, nil
}

// Alert is one condition and the work on it.
type Alert struct {
	ID          string     `json:"id" db:"id"`
	Fingerprint string     `json:"fingerprint" db:"fingerprint"`
	Kind        Kind       `json:"kind" db:"kind"`
	Severity    Severity   `json:"severity" db:"severity"`
	AssetID     string     `json:"asset_id" db:"asset_id"`
	CheckID     string     `json:"check_id" db:"check_id"`
	Key         string     `json:"key" db:"key"`
	Title       string     `json:"title" db:"title"`
	Condition   Condition  `json:"condition" db:"condition"`
	Workflow    State      `json:"workflow" db:"workflow"`
	Resolution  Resolution `json:"resolution" db:"resolution"` // "" unless closed
	ChangeRef   string     `json:"change_ref" db:"change_ref"`
	// RiskExpiresAt is when an accepted risk ends (accepted_risk only).
	RiskExpiresAt *time.Time `json:"risk_expires_at" db:"risk_expires_at"`
	Team          string     `json:"team" db:"team"`
	Assignee      string     `json:"assignee" db:"assignee"`
	// Detail is the latest firing observation's detail.
	Detail        map[string]any `json:"detail" db:"-"`
	FirstFiredAt  time.Time      `json:"first_fired_at" db:"first_fired_at"`
	LastFiredAt   time.Time      `json:"last_fired_at" db:"last_fired_at"`
	ClearedAt     *time.Time     `json:"cleared_at" db:"cleared_at"` // while cleared
	FireCount     int64          `json:"fire_count" db:"fire_count"`
	Regression    bool           `json:"regression" db:"regression"` // it fired again after a close
	ReopenedCount int            `json:"reopened_count" db:"reopened_count"`
	CreatedAt     time.Time      `json:"created_at" db:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at" db:"updated_at"`
	ClosedAt      *time.Time     `json:"closed_at" db:"closed_at"`
	AckedAt       *time.Time     `json:"acked_at" db:"acked_at"` // first move to triage
	EscalatedAt   *time.Time     `json:"escalated_at" db:"escalated_at"`
	// Transitions (oldest first) and the latest occurrences (oldest first)
	// are filled in by Get.
	Transitions []Transition `json:"transitions,omitempty" db:"-"`
	Occurrences []Occurrence `json:"occurrences,omitempty" db:"-"`
}

// Open says whether people still have work on the alert.
func (a Alert) Open() bool { return a.Workflow != StateClosed }

// Transition is one recorded move of an alert's workflow.
type Transition struct {
	ID         int64      `json:"id" db:"id"`
	At         time.Time  `json:"at" db:"at"`
	By         string     `json:"by" db:"actor"`
	From       State      `json:"from" db:"from_state"`
	To         State      `json:"to" db:"to_state"`
	Resolution Resolution `json:"resolution,omitempty" db:"resolution"`
	Note       string     `json:"note" db:"note"`
	ChangeRef  string     `json:"change_ref,omitempty" db:"change_ref"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty" db:"expires_at"`
	// AcceptBaseline: the authorized change is to become the host's new
	// baseline.
	AcceptBaseline bool `json:"accept_baseline" db:"accept_baseline"`
}

// Occurrence is one firing or clearing observation of an alert's condition.
type Occurrence struct {
	ID        int64          `json:"id"`
	At        time.Time      `json:"at"`
	Condition Condition      `json:"condition"`
	Detail    map[string]any `json:"detail"`
}

// TransitionRequest asks to move an alert.
type TransitionRequest struct {
	To         State      `json:"to"`
	Resolution Resolution `json:"resolution,omitempty"` // closing only, and then required
	Note       string     `json:"note,omitempty"`
	ChangeRef  string     `json:"change_ref,omitempty"` // required for authorized_change
	ExpiresAt  *time.Time `json:"expires_at,omitempty"` // required (in the future) for accepted_risk
	// AcceptBaseline takes an authorized change as the host's new baseline.
	AcceptBaseline bool `json:"accept_baseline,omitempty"`
}

// ErrTransition marks a refused move; the error is a *TransitionError.
var ErrTransition = errors.New("alert transition refused")

// TransitionError is a refused move and why.
type TransitionError struct {
	From, To State
	// Reason says why, fit to show to the person who asked.
	Reason string
}

func (e *TransitionError) Error() string { return "alert transition refused: " + e.Reason }

func (e *TransitionError) Unwrap() error { return ErrTransition }

// ErrNotFound means there is no alert with the id.
var ErrNotFound = errors.New("alert not found")

// ErrBadFilter means a List filter names an unknown state, severity or
// kind, or carries a cursor List did not give out.
var ErrBadFilter = errors.New("bad alert filter")

// ChangeType says what Observe did to an alert.
type ChangeType string

const (
	ChangeOpened   ChangeType = "opened"   // a new alert
	ChangeUpdated  ChangeType = "updated"  // an open alert fired again
	ChangeReopened ChangeType = "reopened" // a closed alert reopened (a regression, or an accepted risk that expired)
	ChangeCleared  ChangeType = "cleared"  // the condition cleared
	// ChangeSuppressed: a closed alert fired again and stays closed (an
	// accepted risk not yet expired, a false positive or an authorized
	// change firing again identically).
	ChangeSuppressed ChangeType = "suppressed"
)

// Change is one alert that Observe (or ReopenExpired) changed, as it is now.
type Change struct {
	Type  ChangeType `json:"type"`
	Alert Alert      `json:"alert"`
	// Refired: an updated alert whose condition had cleared fires again.
	Refired bool `json:"refired,omitempty"`
	// ClosedAs is the resolution a reopened or suppressed alert was closed as.
	ClosedAs Resolution `json:"closed_as,omitempty"`
}
