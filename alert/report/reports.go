package report

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/reckon-dev/reckon/alert"
)

// alertsOf loads the alerts of q's period (of kinds, when given) and a
// function naming the group of each under q.GroupBy.
func (l *loader) alertsOf(ctx context.Context, q Query, withFirst bool, kinds ...alert.Kind) ([]alertRec, func(*alertRec) string, error) {
	ks := make([]string, len(kinds))
	for i, k := range kinds {
		ks[i] = string(k)
	}
	recs, err := l.alerts(ctx, q, withFirst, ks...)
	if err != nil {
		return nil, nil, err
	}
	var assets map[string]*asset
	if byAsset(q.GroupBy) {
		ids := make([]string, len(recs))
		for i, r := range recs {
			ids[i] = r.AssetID
		}
		if assets, err = l.assetsByID(ctx, ids); err != nil {
			return nil, nil, err
		}
	}
	return recs, func(r *alertRec) string { return alertGroup(q.GroupBy, r, assets[r.AssetID]) }, nil
}

func timeToDetect(ctx context.Context, l *loader, q Query) ([]Row, error) {
	recs, group, err := l.alertsOf(ctx, q, true, alert.KindDrift, alert.KindCheckFailed)
	if err != nil {
		return nil, err
	}
	// good[i] is the last good assessment of recs[i], once known.
	good := make([]string, len(recs))
	seenBy := make([]string, len(recs))
	for i := range recs {
		if seenBy[i], good[i], err = recs[i].raisedBy(); err != nil {
			return nil, err
		}
	}
	as := map[string]*assessmentRec{}
	if err := l.assessments(ctx, append(slices.Clone(seenBy), good...), as); err != nil {
		return nil, err
	}
	for i := range recs {
		if a, ok := as[seenBy[i]]; ok && good[i] == "" {
			good[i] = a.PreviousID
		}
	}
	if err := l.assessments(ctx, good, as); err != nil {
		return nil, err
	}
	var samples []sample
	for i := range recs {
		if a, ok := as[good[i]]; ok && a.FinishedAt != nil {
			samples = append(samples, sample{group(&recs[i]), recs[i].FirstFiredAt.Sub(*a.FinishedAt)})
		}
	}
	return durationRows(samples), nil
}

func pipelineLatency(ctx context.Context, l *loader, q Query) ([]Row, error) {
	recs, group, err := l.alertsOf(ctx, q, true)
	if err != nil {
		return nil, err
	}
	seenBy := make([]string, len(recs))
	for i := range recs {
		if seenBy[i], _, err = recs[i].raisedBy(); err != nil {
			return nil, err
		}
	}
	as := map[string]*assessmentRec{}
	if err := l.assessments(ctx, seenBy, as); err != nil {
		return nil, err
	}
	var samples []sample
	for i := range recs {
		if a, ok := as[seenBy[i]]; ok && a.FinishedAt != nil {
			samples = append(samples, sample{group(&recs[i]), recs[i].CreatedAt.Sub(*a.FinishedAt)})
		}
	}
	return durationRows(samples), nil
}

func newHostAssessment(ctx context.Context, l *loader, q Query) ([]Row, error) {
	assets, err := l.newAssets(ctx, q)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(assets))
	for i, a := range assets {
		ids[i] = a.ID
	}
	first, err := l.firstAssessments(ctx, ids)
	if err != nil {
		return nil, err
	}
	var samples []sample
	for _, a := range assets {
		as, ok := first[a.ID]
		if !ok {
			continue
		}
		start := as.CreatedAt
		if as.StartedAt != nil {
			start = *as.StartedAt
		}
		g := GroupAll
		if q.GroupBy == "week" {
			g = isoWeek(a.FirstSeen)
		} else if q.GroupBy != GroupAll {
			g = assetGroup(q.GroupBy, a)
		}
		samples = append(samples, sample{g, start.Sub(a.FirstSeen)})
	}
	return durationRows(samples), nil
}

// alertSpan measures, for each alert end gives a time for, end minus created_at.
func alertSpan(ctx context.Context, l *loader, q Query, end func(*alertRec) *time.Time) ([]Row, error) {
	recs, group, err := l.alertsOf(ctx, q, false)
	if err != nil {
		return nil, err
	}
	var samples []sample
	for i := range recs {
		if t := end(&recs[i]); t != nil {
			samples = append(samples, sample{group(&recs[i]), t.Sub(recs[i].CreatedAt)})
		}
	}
	return durationRows(samples), nil
}

func timeToAcknowledge(ctx context.Context, l *loader, q Query) ([]Row, error) {
	return alertSpan(ctx, l, q, func(r *alertRec) *time.Time { return r.AckedAt })
}

func timeToResolve(ctx context.Context, l *loader, q Query) ([]Row, error) {
	return alertSpan(ctx, l, q, func(r *alertRec) *time.Time { return r.ClosedAt })
}

func timeToVerifiedFix(ctx context.Context, l *loader, q Query) ([]Row, error) {
	return alertSpan(ctx, l, q, func(r *alertRec) *time.Time {
		if r.Workflow != string(alert.StateClosed) || r.Resolution != string(alert.Fixed) {
			return nil
		}
		return r.ClearedAt
	})
}

// counts are a rate's part and whole.
type counts struct{ part, whole int }

// rateRows counts, by group, the alerts in whole and of those the ones in part.
func rateRows(ctx context.Context, l *loader, q Query, partCol string, whole, part func(*alertRec) bool) ([]Row, error) {
	recs, group, err := l.alertsOf(ctx, q, false)
	if err != nil {
		return nil, err
	}
	by := map[string]*counts{}
	for i := range recs {
		r := &recs[i]
		if !whole(r) {
			continue
		}
		g := group(r)
		c := by[g]
		if c == nil {
			c = &counts{}
			by[g] = c
		}
		c.whole++
		if part(r) {
			c.part++
		}
	}
	rows := make([]Row, 0, len(by))
	for _, g := range sortedGroups(by) {
		c := by[g]
		rows = append(rows, Row{"group": g, "closed": c.whole, partCol: c.part, "rate": ratio(c.part, c.whole)})
	}
	return rows, nil
}

func falsePositiveRate(ctx context.Context, l *loader, q Query) ([]Row, error) {
	return rateRows(ctx, l, q, "false_positives",
		func(r *alertRec) bool { return r.Workflow == string(alert.StateClosed) },
		func(r *alertRec) bool { return r.Resolution == string(alert.FalsePositive) })
}

func regressionRate(ctx context.Context, l *loader, q Query) ([]Row, error) {
	reopened := func(r *alertRec) bool { return r.Regression || r.ReopenedCount > 0 }
	return rateRows(ctx, l, q, "regressions",
		func(r *alertRec) bool { return r.ClosedAt != nil || reopened(r) },
		reopened)
}

// byAsset says whether a group is read from the alert's asset.
func byAsset(group string) bool {
	return slices.Contains(assetGroups, group) && group != GroupAll && group != "week"
}

// alertGroup is the group of an alert; a is its asset, nil when it has none.
func alertGroup(group string, r *alertRec, a *asset) string {
	switch group {
	case GroupAll:
		return GroupAll
	case "week":
		return isoWeek(r.CreatedAt)
	case "kind":
		return r.Kind
	case "severity":
		return r.Severity
	case "team":
		return orNone(r.Team)
	case "check":
		return r.check()
	}
	if a == nil {
		return none
	}
	return assetGroup(group, a)
}

// assetGroup is the group of an asset by one of its fields.
func assetGroup(group string, a *asset) string {
	switch group {
	case "device_type":
		return orNone(a.DeviceType)
	case "software":
		return orNone(software(a))
	case "network":
		return orNone(network(a))
	}
	if a.CMDB == nil {
		return none
	}
	switch group {
	case "site":
		return orNone(a.CMDB.Site)
	case "business_unit":
		return orNone(a.CMDB.BusinessUnit)
	case "owner":
		return orNone(a.CMDB.Owner)
	}
	return none
}

// software is the asset's OS, else the product of its lowest open port
// that names one.
func software(a *asset) string {
	if a.OS != "" {
		return a.OS
	}
	product, port := "", 0
	for _, s := range a.Services {
		if s.Product != "" && (product == "" || s.Port < port) {
			product, port = s.Product, s.Port
		}
	}
	return product
}

// network is the /24 of the asset's first IPv4.
func network(a *asset) string {
	for _, ip := range a.IPs {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			continue
		}
		if addr = addr.Unmap(); addr.Is4() {
			p, _ := addr.Prefix(24)
			return p.String()
		}
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}
