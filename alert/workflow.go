package alert

import (
	"fmt"
	"strings"
	"time"
)

// moves lists the workflow moves people may make, from each state.
var moves = map[State][]State{
	StateNew:       {StateTriage},
	StateTriage:    {StateEscalated, StateClosed},
	StateEscalated: {StateClosed, StateTriage},
	StateClosed:    nil,
}

func refuse(a Alert, to State, format string, args ...any) *TransitionError {
	return &TransitionError{From: a.Workflow, To: to, Reason: fmt.Sprintf(format, args...)}
}

// checkMove says whether req may move a, at now; nil means it may.
func checkMove(a Alert, req TransitionRequest, now time.Time) *TransitionError {
	to := req.To
	if !to.Valid() {
		return refuse(a, to, "unknown state %q; an alert moves to triage, escalated or closed", to)
	}
	if to == StateNew {
		return refuse(a, to, "an alert goes back to new only by itself, when its condition fires again after a close")
	}
	if a.Workflow == to {
		return refuse(a, to, "the alert is already in %s", to)
	}
	if a.Workflow == StateClosed {
		return refuse(a, to, "a closed alert is not moved by hand; it reopens by itself when its condition fires again")
	}
	allowed := false
	for _, s := range moves[a.Workflow] {
		allowed = allowed || s == to
	}
	if !allowed {
		// Only new -> escalated and new -> closed are left.
		return refuse(a, to, "a new alert is taken to triage before it is %s", to)
	}
	if to != StateClosed {
		var extra []string
		if req.Resolution != "" {
			extra = append(extra, "resolution")
		}
		if req.ChangeRef != "" {
			extra = append(extra, "change_ref")
		}
		if req.ExpiresAt != nil {
			extra = append(extra, "expires_at")
		}
		if req.AcceptBaseline {
			extra = append(extra, "accept_baseline")
		}
		if len(extra) > 0 {
			verb := "is"
			if len(extra) > 1 {
				verb = "are"
			}
			return refuse(a, to, "%s %s given only when closing; a move to %s takes none", strings.Join(extra, ", "), verb, to)
		}
		return nil
	}
	switch {
	case req.Resolution == "":
		return refuse(a, to, "closing needs a resolution: one of %s", resolutionList())
	case !req.Resolution.Valid():
		return refuse(a, to, "unknown resolution %q; it is one of %s", req.Resolution, resolutionList())
	case req.Resolution == AuthorizedChange && strings.TrimSpace(req.ChangeRef) == "":
		return refuse(a, to, "authorized_change needs change_ref: the change that authorised it")
	case req.Resolution != AuthorizedChange && req.AcceptBaseline:
		return refuse(a, to, "accept_baseline goes with authorized_change only")
	case req.Resolution == AcceptedRisk && req.ExpiresAt == nil:
		return refuse(a, to, "accepted_risk needs expires_at: when the acceptance ends")
	case req.Resolution == AcceptedRisk && !req.ExpiresAt.After(now):
		return refuse(a, to, "accepted_risk needs an expires_at in the future; %s has passed", req.ExpiresAt.UTC().Format(time.RFC3339))
	case req.Resolution != AcceptedRisk && req.ExpiresAt != nil:
		return refuse(a, to, "expires_at goes with accepted_risk only")
	case req.Resolution == Fixed && a.Condition != Cleared:
		return refuse(a, to, "fixed is accepted once a later assessment shows the condition cleared; it still fires (last at %s)",
			a.LastFiredAt.UTC().Format(time.RFC3339))
	}
	return nil
}

func resolutionList() string {
	names := make([]string, len(resolutions))
	for i, r := range resolutions {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// applyMove sets the fields of a that a permitted move changes.
func applyMove(a *Alert, req TransitionRequest, by string, now time.Time) {
	from := a.Workflow
	a.Workflow, a.UpdatedAt = req.To, now
	switch req.To {
	case StateTriage:
		if a.AckedAt == nil {
			a.AckedAt = &now
		}
		if from == StateNew || a.Assignee == "" {
			a.Assignee = by
		}
	case StateEscalated:
		if a.EscalatedAt == nil {
			a.EscalatedAt = &now
		}
	case StateClosed:
		a.Resolution, a.ChangeRef, a.ClosedAt = req.Resolution, strings.TrimSpace(req.ChangeRef), &now
		a.RiskExpiresAt = nil
		if req.Resolution == AcceptedRisk {
			t := req.ExpiresAt.UTC().Truncate(time.Microsecond)
			a.RiskExpiresAt = &t
		}
	}
}

// reopen puts a closed alert back to new, as reckon's move: the work
// starts again, so the resolution, assignee and the workflow times go.
func reopen(a *Alert, now time.Time, note string) Transition {
	t := Transition{At: now, By: SystemActor, From: a.Workflow, To: StateNew, Note: note}
	a.Workflow, a.UpdatedAt = StateNew, now
	a.Resolution, a.ChangeRef, a.RiskExpiresAt, a.Assignee = "", "", nil, ""
	a.ClosedAt, a.AckedAt, a.EscalatedAt = nil, nil, nil
	a.ReopenedCount++
	return t
}
