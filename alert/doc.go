// Package alert runs the alert process: deduplication, the workflow from new
// through triage and escalation to close, routing, notifications and the
// reports on time to detect and time to resolve.
//
// # Signals and deduplication
//
// Sources (inventory, CMDB reconciliation, assessments, reckon's own
// health) report a [Signal]: a condition that fires or has cleared. Each
// condition has a [Fingerprint] over its kind, asset, check (or kind) and
// normalised key, and one alert per fingerprint: the same condition firing
// again updates the alert (fire count, last fired, latest detail) instead of
// opening another. [Store.Observe] applies a batch of signals in one
// transaction and returns what changed, for notifiers.
//
// An alert keeps two views apart. The machine's view, [Alert.Condition]
// (firing or cleared), is set only by signals, and its history is the
// alert's occurrences. The people's view, [Alert.Workflow], is set only by
// [Store.Transition], and its history is the alert's transitions, each with
// who, when and a note; the one exception is a closed alert whose condition
// returns, which reckon reopens itself (recorded as a transition by
// [SystemActor]).
//
// # Workflow
//
//	new ──> triage ──> closed
//	          │  ^        ^
//	          v  │        │
//	        escalated ────┘
//
// new -> triage (someone takes it, and becomes its assignee);
// triage -> escalated | closed; escalated -> closed | triage (de-escalated).
// A new alert is triaged before it is closed or escalated, and a closed alert
// is never moved by hand. Closing needs a [Resolution]:
//
//   - false_positive, true_positive, duplicate: no more is needed;
//   - authorized_change: needs change_ref; accept_baseline may be set, to
//     take the change as the host's new baseline (stored on the transition);
//   - fixed: accepted only once the condition has cleared, that is once a
//     later observation or assessment showed it gone;
//   - accepted_risk: needs an expires_at in the future.
//
// A refused move is a [*TransitionError] (it wraps [ErrTransition]) whose
// Reason says why, fit to show to the person who asked. Moves are optimistic:
// the update checks the workflow state it read, so of two people moving one
// alert at once, one wins and the other is told it moved meanwhile.
//
// # Closed alerts that fire again
//
// A closed alert whose condition fires again reopens as a regression
// (workflow new, regression set, reopened count raised, resolution cleared),
// except:
//
//   - accepted_risk whose expiry is still ahead of the signal: it stays
//     closed; the occurrence is recorded. [Store.ReopenExpired] reopens such
//     alerts once the expiry has passed, if the condition still fires;
//   - false_positive and authorized_change: the identical condition (same
//     detail, compared without the keys that name an observation rather than
//     describe the condition, such as assessment_id) stays closed; a
//     different detail reopens it.
//
// A signal older than the alert's latest change of condition is ignored, so
// a late batch does not flip a newer state.
package alert
