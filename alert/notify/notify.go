package notify

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Notification is one alert event to deliver.
type Notification struct {
	ID        string         `json:"id"`    // unique per notification (idempotency key for receivers)
	Event     string         `json:"event"` // opened, updated, reopened, cleared, transitioned, repeat
	AlertID   string         `json:"alert_id"`
	Kind      string         `json:"kind"`     // unmanaged, drift, check_failed, stale, conflict, health
	Severity  string         `json:"severity"` // info, low, medium, high, critical
	AssetID   string         `json:"asset_id,omitempty"`
	Title     string         `json:"title"`
	Condition string         `json:"condition"` // firing, cleared
	Workflow  string         `json:"workflow"`  // new, triage, escalated, closed
	Team      string         `json:"team,omitempty"`
	Detail    map[string]any `json:"detail,omitempty"`
	At        time.Time      `json:"at"`
	// Group: alerts routed together (routing's group key); Count how many
	// alerts this notification stands for when grouped.
	Group string `json:"group,omitempty"`
	Count int    `json:"count,omitempty"`
}

// Sink delivers notifications somewhere: a webhook, a syslog collector.
//
// Name identifies the sink in the outbox and in logs and metrics; it must be
// stable across restarts (rows waiting in the outbox are found by it) and
// unique among a Dispatcher's sinks.
//
// Send delivers a batch and returns nil once the receiver has taken all of
// it. An error wrapping ErrPermanent means trying again cannot help and the
// batch is given up; any other error is retried later. ErrRetryable marks a
// retryable error explicitly, and a *RetryError may say how long the
// receiver asked to be left alone (Retry-After).
type Sink interface {
	Name() string
	Send(ctx context.Context, n []Notification) error
}

// ErrRetryable marks a delivery error worth retrying: the receiver is down,
// slow, overloaded or answered 408, 429 or 5xx.
var ErrRetryable = errors.New("retryable")

// ErrPermanent marks a delivery error that retrying cannot fix: the receiver
// refused the request (4xx other than 408 and 429) or the sink is misconfigured.
var ErrPermanent = errors.New("permanent")

// RetryError is a retryable delivery error. errors.Is(err, ErrRetryable)
// holds for it; RetryAfter is the receiver's Retry-After, zero when it gave none.
type RetryError struct {
	Err        error
	RetryAfter time.Duration
}

func (e *RetryError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("%v (retry after %s)", e.Err, e.RetryAfter)
	}
	return e.Err.Error()
}

// Unwrap lets errors.Is find ErrRetryable and the cause.
func (e *RetryError) Unwrap() []error { return []error{ErrRetryable, e.Err} }

// RetryAfter returns the Retry-After carried by err, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var re *RetryError
	if errors.As(err, &re) && re.RetryAfter > 0 {
		return re.RetryAfter, true
	}
	return 0, false
}

// retryable wraps err as a RetryError.
func retryable(err error, after time.Duration) error {
	return &RetryError{Err: err, RetryAfter: after}
}

// permanentError is err marked permanent, its message unchanged.
type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{ErrPermanent, e.err} }

// permanent marks err so that errors.Is(err, ErrPermanent) holds.
func permanent(err error) error { return &permanentError{err: err} }
