package servicenow

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/reckon-dev/reckon/cmdb"
)

// MaxBatch is the most items one IRE payload carries (ServiceNow's
// best-practice limit).
const MaxBatch = 500

// networkTypes are the device types (as the inventory names them) pushed
// as cmdb_ci_ip_device; everything else is a cmdb_ci_computer.
var networkTypes = []string{"router", "switch", "access-point", "firewall", "printer", "phone", "load-balancer", "network"}

// IRE request shapes.
type ireItem struct {
	ClassName  string            `json:"className"`
	Values     map[string]string `json:"values"`
	Lookup     []ireLookup       `json:"lookup,omitempty"`
	Settings   map[string]bool   `json:"settings,omitempty"`
	SourceInfo *ireSource        `json:"sys_object_source_info,omitempty"`
}

type ireLookup struct {
	ClassName string            `json:"className"`
	Values    map[string]string `json:"values"`
}

type ireSource struct {
	SourceName      string `json:"source_name"`
	SourceNativeKey string `json:"source_native_key"`
	SourceRecency   string `json:"source_recency_timestamp,omitempty"`
}

// IRE response shape (the fields reckon reads).
type ireAnswer struct {
	Result *struct {
		Items []struct {
			ClassName    string `json:"className"`
			Operation    string `json:"operation"`
			SysID        string `json:"sysId"`
			InputIndices []int  `json:"inputIndices"`
			Errors       []struct {
				Error   string `json:"error"`
				Message string `json:"message"`
			} `json:"errors"`
		} `json:"items"`
	} `json:"result"`
}

// Push sends assets to IRE, at most MaxBatch per payload, one payload
// after the other; a dry run posts to /api/now/identifyreconcile/query,
// which identifies without writing. Each item carries
// sys_object_source_info (SourceName, the asset id as source native key,
// LastSeen as recency) so the next push is identified by reckon's own key
// first.
//
// Which fields are sent. cmdb.PushOptions asks that fields reckon does not
// own are written only where the record has them empty. IRE has no
// "only if empty" per field, and reading each record first would race
// with other writers, so:
//   - an asset with no CI yet (CIID empty) sends every field reckon knows
//     (name, serial_number, mac_address, ip_address, manufacturer, os):
//     the CI it creates has nothing curated to protect;
//   - an asset matched to a CI sends that CI's sys_id (identification) and
//     only the fields in Owns.
//
// The instance's reconciliation rules still decide on top of this: with
// reckon's data source given a lower priority than the teams' sources for
// an attribute, IRE will not let reckon overwrite what they wrote. Settings
// updateWithoutDowngrade and updateWithoutSwitch keep IRE from
// reclassifying a curated CI (a Linux server stays one when reckon sends
// cmdb_ci_computer).
//
// Message: IRE has no field for a change message, and writing it into a CI
// field would be a write reckon does not own; it is returned on every
// Change and logged with each payload, nowhere else.
//
// Per-item errors come back on their Change and do not stop the others; a
// payload IRE refuses as a whole (4xx, or 5xx after retries) ends the push
// with an error, returning the changes of the payloads before it.
func (c *Client) Push(ctx context.Context, assets []cmdb.Asset, o cmdb.PushOptions) ([]cmdb.Change, error) {
	path := "/api/now/identifyreconcile"
	if o.DryRun {
		path += "/query"
	}
	q := url.Values{"sysparm_data_source": {c.o.DataSource}}

	var changes []cmdb.Change
	var batch []cmdb.Asset
	var items []ireItem
	seen := map[string]bool{}
	flush := func() error {
		if len(items) == 0 {
			return nil
		}
		cs, err := c.pushBatch(ctx, path, q, batch, items, o)
		changes = append(changes, cs...)
		batch, items = batch[:0], items[:0]
		return err
	}
	for _, a := range assets {
		if a.ID == "" {
			changes = append(changes, cmdb.Change{Action: action(a), Object: className(a), Message: o.Message,
				Error: "asset without an id: not sent"})
			continue
		}
		if seen[a.ID] { // IRE rejects or merges duplicate items: send each asset once
			continue
		}
		seen[a.ID] = true
		batch = append(batch, a)
		items = append(items, c.item(a, o))
		if len(items) == MaxBatch {
			if err := flush(); err != nil {
				return changes, err
			}
		}
	}
	if err := flush(); err != nil {
		return changes, err
	}
	return changes, nil
}

func (c *Client) pushBatch(ctx context.Context, path string, q url.Values, batch []cmdb.Asset, items []ireItem, o cmdb.PushOptions) ([]cmdb.Change, error) {
	body, err := json.Marshal(map[string]any{"items": items})
	if err != nil {
		return nil, fmt.Errorf("servicenow: IRE payload: %w", err)
	}
	c.log.Info("IRE payload", "path", path, "items", len(items), "dry_run", o.DryRun, "message", o.Message)
	resp, _, err := c.do(ctx, http.MethodPost, path, q, body)
	if err != nil {
		return nil, err
	}
	var ans ireAnswer
	if err := json.Unmarshal(resp, &ans); err != nil {
		return nil, fmt.Errorf("servicenow: POST %s: 200 with a body that is not an IRE answer: %w", c.show(path, q), err)
	}
	if ans.Result == nil {
		return nil, fmt.Errorf("servicenow: POST %s: 200 without a result", c.show(path, q))
	}
	answered := make([]bool, len(batch))
	var out []cmdb.Change
	for pos, it := range ans.Result.Items {
		i := pos
		if len(it.InputIndices) > 0 {
			i = it.InputIndices[0]
		}
		if i < 0 || i >= len(batch) || answered[i] {
			c.log.Warn("IRE answer item does not match a payload item", "index", i, "class", it.ClassName)
			continue
		}
		answered[i] = true
		a := batch[i]
		ch := cmdb.Change{AssetID: a.ID, Object: cmp.Or(it.ClassName, items[i].ClassName), Fields: fields(items[i]), Message: o.Message}
		var errs []string
		for _, e := range it.Errors {
			errs = append(errs, strings.TrimSpace(e.Error+": "+e.Message))
		}
		op := strings.ToUpper(it.Operation)
		switch {
		case len(errs) > 0:
			ch.Action = action(a)
			ch.Error = strings.Join(errs, "; ")
		case strings.HasPrefix(op, "INSERT"):
			ch.Action = "create"
		case strings.HasPrefix(op, "UPDATE"):
			ch.Action = "update"
		case op == "NO_CHANGE":
			continue
		default:
			ch.Action = action(a)
			ch.Error = "unexpected IRE operation " + it.Operation
		}
		// IRE answers sysId "Unknown" for what it did not (or, in a dry
		// run, would) create.
		if it.SysID != "" && it.SysID != "Unknown" && !(o.DryRun && ch.Action == "create") {
			ch.ID = it.SysID
		}
		out = append(out, ch)
	}
	for i, ok := range answered {
		if !ok {
			out = append(out, cmdb.Change{AssetID: batch[i].ID, Action: action(batch[i]), Object: items[i].ClassName,
				Fields: fields(items[i]), Message: o.Message, Error: "IRE returned no answer for this item"})
		}
	}
	return out, nil
}

// item builds one IRE item; see Push for which fields it carries.
func (c *Client) item(a cmdb.Asset, o cmdb.PushOptions) ireItem {
	it := ireItem{ClassName: className(a), Values: map[string]string{},
		Settings: map[string]bool{"updateWithoutDowngrade": true, "updateWithoutSwitch": true}}
	known := map[string]string{
		"name":          a.Name,
		"serial_number": a.Serial,
		"manufacturer":  a.Vendor, // a reference: IRE resolves a display name
	}
	if len(a.MACs) > 0 {
		known["mac_address"] = a.MACs[0]
	}
	if ip := primaryIP(a); ip != "" {
		known["ip_address"] = ip
	}
	if it.ClassName == "cmdb_ci_computer" {
		known["os"] = a.OS
	}
	for k, v := range known {
		if v == "" {
			continue
		}
		if a.CIID != "" && !slices.Contains(o.Owns, k) {
			continue
		}
		it.Values[k] = v
	}
	if a.CIID != "" {
		it.Values["sys_id"] = a.CIID
	}
	// reckon does not know interface names; the MAC names its adapter so
	// the Hardware Rule's mac_address+name entry can match on the next push.
	for _, m := range a.MACs {
		v := map[string]string{"mac_address": m, "name": m}
		if len(a.MACs) == 1 && known["ip_address"] != "" {
			v["ip_address"] = known["ip_address"] // one NIC: the address is on it
		}
		it.Lookup = append(it.Lookup, ireLookup{ClassName: "cmdb_ci_network_adapter", Values: v})
	}
	it.SourceInfo = &ireSource{SourceName: c.o.SourceName, SourceNativeKey: a.ID}
	if !a.LastSeen.IsZero() {
		it.SourceInfo.SourceRecency = a.LastSeen.UTC().Format(snTime)
	}
	return it
}

func className(a cmdb.Asset) string {
	if slices.Contains(networkTypes, strings.ToLower(a.DeviceType)) {
		return "cmdb_ci_ip_device"
	}
	return "cmdb_ci_computer"
}

// action is what a push of a tried to do.
func action(a cmdb.Asset) string {
	if a.CIID != "" {
		return "update"
	}
	return "create"
}

// primaryIP: the first IPv4 address, else the first.
func primaryIP(a cmdb.Asset) string {
	for _, ip := range a.IPs {
		if ip.Is4() || ip.Is4In6() {
			return ip.Unmap().String()
		}
	}
	if len(a.IPs) > 0 {
		return a.IPs[0].String()
	}
	return ""
}

// fields are the values sent, without the identifying sys_id.
func fields(it ireItem) map[string]any {
	m := make(map[string]any, len(it.Values))
	for k, v := range it.Values {
		if k != "sys_id" {
			m[k] = v
		}
	}
	return m
}
