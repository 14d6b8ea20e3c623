package inventory

import (
	"context"
	"slices"
	"time"

	"github.com/reckon-dev/reckon/inventory/store"
)

// Verdict is a reconciliation's word on one asset.
type Verdict struct {
	AssetID string
	// Status is managed, unmanaged, unknown or conflict.
	Status string
	Link   CMDBLink
}

// SetVerdict records a reconciliation's verdict on asset id, with what the
// CMDB says of it, and reports whether anything changed. An asset merged or
// split away since the reconciliation read it is left alone.
func (e *Engine) SetVerdict(v Verdict, now time.Time) bool {
	a, ok := e.Get(v.AssetID)
	if !ok {
		return false
	}
	old := a.ro().CMDB
	to := S(v.Status)
	same := a.Status == to && old != nil && sameLink(*old, v.Link)
	if same {
		return false
	}
	if a.Status != to {
		e.emit(a, StampOf(now), EventVerdict, map[string]string{"from": a.Status.String(), "to": v.Status, "reason": v.Link.Reason})
	}
	a.Status = to
	l := v.Link
	l.Checked = now.UTC()
	a.rw().CMDB = &l
	e.markDirty(a)
	return true
}

// sameLink compares links, ignoring when they were checked.
func sameLink(a, b CMDBLink) bool {
	return a.CIID == b.CIID && a.CIName == b.CIName && a.URL == b.URL && a.Site == b.Site &&
		a.BusinessUnit == b.BusinessUnit && a.Owner == b.Owner && a.Role == b.Role && a.Rung == b.Rung &&
		a.Reason == b.Reason && slices.Equal(a.Disagree, b.Disagree) && slices.Equal(a.CIs, b.CIs) &&
		slices.Equal(a.Others, b.Others)
}

// EachAsset calls fn for every asset under the inventory's lock. fn must
// neither keep nor change the asset.
func (inv *Inventory) EachAsset(fn func(*Asset)) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.engine.Assets(fn)
}

// SetVerdicts records a reconciliation's verdicts, stores the changed
// assets, and returns how many changed.
func (inv *Inventory) SetVerdicts(ctx context.Context, vs []Verdict) (int, error) {
	now := store.Now()
	n := 0
	inv.mu.Lock()
	for _, v := range vs {
		if inv.engine.SetVerdict(v, now) {
			n++
		}
	}
	inv.mu.Unlock()
	if n == 0 {
		return 0, nil
	}
	return n, inv.flushOnce(ctx)
}

// Applied is the sequence number of the newest observation batch folded
// into the assets: it grows whenever the inventory may have changed, so a
// reconciliation can tell whether there is anything new to look at.
func (inv *Inventory) Applied() int64 {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.lastSeq
}
