// Package route decides who gets an alert: a routing tree matched on the
// alert and its device (severity, kind, check family, site, network,
// business unit, owner, device type), assigning a team and the receivers to
// notify, with grouping and repeat intervals; silences (matchers with an
// expiry) and inhibition (a device that is down or gone silences its check
// and drift alerts) hold notifications back without touching the alerts.
//
// The tree works like Alertmanager's: a node that matches hands the alert
// to the first child that matches (and, with continue, to later children
// that match too); when no child matches, the node itself is the target.
package route

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Attrs are what a route matches on: the alert's and its device's.
type Attrs struct {
	Severity     string
	Kind         string
	Family       string // the check's family: its id's prefix, lower case (tls, ssh ...); "" for no check
	CheckID      string
	AssetID      string
	Site         string
	BusinessUnit string
	Owner        string
	DeviceType   string
	IPs          []netip.Addr
}

// Match is a route's condition: every non-empty field must hold (values in
// one field are alternatives, compared case-insensitively).
type Match struct {
	Severity     []string       `json:"severity,omitempty" yaml:"severity"`
	Kind         []string       `json:"kind,omitempty" yaml:"kind"`
	Family       []string       `json:"family,omitempty" yaml:"family"`
	CheckID      []string       `json:"check_id,omitempty" yaml:"check_id"`
	AssetID      []string       `json:"asset_id,omitempty" yaml:"asset_id"`
	Site         []string       `json:"site,omitempty" yaml:"site"`
	BusinessUnit []string       `json:"business_unit,omitempty" yaml:"business_unit"`
	Owner        []string       `json:"owner,omitempty" yaml:"owner"`
	DeviceType   []string       `json:"device_type,omitempty" yaml:"device_type"`
	Network      []netip.Prefix `json:"network,omitempty" yaml:"network"`
}

// Empty says whether m matches everything.
func (m Match) Empty() bool {
	return len(m.Severity)+len(m.Kind)+len(m.Family)+len(m.CheckID)+len(m.AssetID)+len(m.Site)+
		len(m.BusinessUnit)+len(m.Owner)+len(m.DeviceType)+len(m.Network) == 0
}

func oneOf(vals []string, v string) bool {
	if len(vals) == 0 {
		return true
	}
	return slices.ContainsFunc(vals, func(x string) bool { return strings.EqualFold(strings.TrimSpace(x), v) })
}

// Matches says whether a matches m.
func (m Match) Matches(a Attrs) bool {
	if !oneOf(m.Severity, a.Severity) || !oneOf(m.Kind, a.Kind) || !oneOf(m.Family, a.Family) || !oneOf(m.CheckID, a.CheckID) ||
		!oneOf(m.AssetID, a.AssetID) || !oneOf(m.Site, a.Site) || !oneOf(m.BusinessUnit, a.BusinessUnit) ||
		!oneOf(m.Owner, a.Owner) || !oneOf(m.DeviceType, a.DeviceType) {
		return false
	}
	if len(m.Network) > 0 {
		in := false
		for _, ip := range a.IPs {
			for _, p := range m.Network {
				if p.Contains(ip) {
					in = true
				}
			}
		}
		if !in {
			return false
		}
	}
	return true
}

// Route is a node of the routing tree. Team, Receivers, GroupBy and the
// intervals are inherited by children that leave them empty.
type Route struct {
	Match    Match    `json:"match"`
	Team     string   `json:"team,omitempty"`
	Receiver []string `json:"receivers,omitempty"`
	// Continue: after this route matched, later siblings are tried too.
	Continue bool `json:"continue,omitempty"`
	// GroupBy names the attributes whose values group alerts into one
	// notification (kind, severity, asset_id, check_id, site, team ...).
	GroupBy []string `json:"group_by,omitempty"`
	// GroupWait is how long a new group waits for more alerts before its
	// first notification; GroupInterval how long before telling of alerts
	// added to a group already notified; RepeatInterval how often an alert
	// still firing and not yet taken in hand is notified again.
	GroupWait      time.Duration `json:"group_wait,omitempty"`
	GroupInterval  time.Duration `json:"group_interval,omitempty"`
	RepeatInterval time.Duration `json:"repeat_interval,omitempty"`
	Routes         []Route       `json:"routes,omitempty"`
}

// Target is where a routed alert goes.
type Target struct {
	Team           string
	Receivers      []string
	GroupBy        []string
	GroupWait      time.Duration
	GroupInterval  time.Duration
	RepeatInterval time.Duration
	// Path names the routes taken, for logs ("root/1/0").
	Path string
}

// Defaults for a root that sets no intervals.
const (
	DefaultGroupWait      = 30 * time.Second
	DefaultGroupInterval  = 5 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
)

// Resolve routes an alert: the targets of the deepest matching routes, in
// tree order. The root always matches (its Match is ignored), so there is at
// least one target.
func (r Route) Resolve(a Attrs) []Target {
	root := Target{Team: r.Team, Receivers: r.Receiver, GroupBy: r.GroupBy, GroupWait: r.GroupWait,
		GroupInterval: r.GroupInterval, RepeatInterval: r.RepeatInterval, Path: "root"}
	if root.GroupWait == 0 {
		root.GroupWait = DefaultGroupWait
	}
	if root.GroupInterval == 0 {
		root.GroupInterval = DefaultGroupInterval
	}
	if root.RepeatInterval == 0 {
		root.RepeatInterval = DefaultRepeatInterval
	}
	return r.resolve(a, root)
}

func (r Route) resolve(a Attrs, self Target) []Target {
	var out []Target
	for i, c := range r.Routes {
		if !c.Match.Matches(a) {
			continue
		}
		t := self
		t.Path = fmt.Sprintf("%s/%d", self.Path, i)
		if c.Team != "" {
			t.Team = c.Team
		}
		if len(c.Receiver) > 0 {
			t.Receivers = c.Receiver
		}
		if len(c.GroupBy) > 0 {
			t.GroupBy = c.GroupBy
		}
		if c.GroupWait > 0 {
			t.GroupWait = c.GroupWait
		}
		if c.GroupInterval > 0 {
			t.GroupInterval = c.GroupInterval
		}
		if c.RepeatInterval > 0 {
			t.RepeatInterval = c.RepeatInterval
		}
		out = append(out, c.resolve(a, t)...)
		if !c.Continue {
			break
		}
	}
	if len(out) == 0 {
		return []Target{self}
	}
	return out
}

// Validate checks a tree: every receiver named exists, group_by names
// known attributes, intervals are not negative.
func (r Route) Validate(receivers []string) error {
	return r.validate("route", receivers)
}

// GroupAttrs are the names group_by accepts.
var GroupAttrs = []string{"kind", "severity", "asset_id", "check_id", "family", "site", "business_unit", "owner", "device_type", "team"}

func (r Route) validate(path string, receivers []string) error {
	for _, n := range r.Receiver {
		if !slices.Contains(receivers, n) {
			return fmt.Errorf("%s.receivers: %q is not a receiver (have %s)", path, n, strings.Join(receivers, ", "))
		}
	}
	for _, g := range r.GroupBy {
		if !slices.Contains(GroupAttrs, g) {
			return fmt.Errorf("%s.group_by: %q is not one of %s", path, g, strings.Join(GroupAttrs, ", "))
		}
	}
	if r.GroupWait < 0 || r.GroupInterval < 0 || r.RepeatInterval < 0 {
		return fmt.Errorf("%s: intervals must not be negative", path)
	}
	for i, c := range r.Routes {
		if err := c.validate(fmt.Sprintf("%s.routes[%d]", path, i), receivers); err != nil {
			return err
		}
	}
	return nil
}

// GroupKey is the value of a target's group_by attributes for a, which
// alerts sharing it are notified together.
func (t Target) GroupKey(a Attrs) string {
	parts := make([]string, 0, len(t.GroupBy)+1)
	parts = append(parts, t.Path)
	for _, g := range t.GroupBy {
		var v string
		switch g {
		case "kind":
			v = a.Kind
		case "severity":
			v = a.Severity
		case "asset_id":
			v = a.AssetID
		case "check_id":
			v = a.CheckID
		case "family":
			v = a.Family
		case "site":
			v = a.Site
		case "business_unit":
			v = a.BusinessUnit
		case "owner":
			v = a.Owner
		case "device_type":
			v = a.DeviceType
		case "team":
			v = t.Team
		}
		parts = append(parts, g+"="+v)
	}
	return strings.Join(parts, ",")
}
