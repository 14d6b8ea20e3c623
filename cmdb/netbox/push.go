package netbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/reckon-dev/reckon/cmdb"
)

var _ cmdb.Pusher = (*Client)(nil)

// dnsName is NetBox's DNSValidator (ipam/validators.py): a name it would
// refuse is not sent as dns_name.
var dnsName = regexp.MustCompile(`^([0-9A-Za-z_-]+|\*)(\.[0-9A-Za-z_-]+)*\.?$`)

// named is a site, role, tag or device type as a write refers to it: NetBox
// 4.2's schema wants a dict of attributes that all match (name and slug),
// so each is looked up by slug first.
type named struct {
	ID           int    `json:"id"`
	Name         string `json:"name"`
	Model        string `json:"model"` // device types
	Slug         string `json:"slug"`
	Manufacturer *struct {
		Name string `json:"name"`
		Slug string `json:"slug"`
	} `json:"manufacturer"`
}

func (n named) key() int { return n.ID }

func (n named) ref() map[string]any {
	if n.Manufacturer != nil {
		return map[string]any{"model": n.Model, "slug": n.Slug,
			"manufacturer": map[string]any{"name": n.Manufacturer.Name, "slug": n.Manufacturer.Slug}}
	}
	return map[string]any{"name": n.Name, "slug": n.Slug}
}

// record is an existing address or device as Push reads it.
type record struct {
	ID           int                        `json:"id"`
	Address      string                     `json:"address"`
	DNSName      string                     `json:"dns_name"`
	Description  string                     `json:"description"`
	Serial       string                     `json:"serial"`
	Status       choice                     `json:"status"`
	CustomFields map[string]json.RawMessage `json:"custom_fields"`
}

func (r record) key() int { return r.ID }

// Push writes assets to NetBox. For each address of an asset it makes sure
// an ipam.ipaddress exists (created tagged, with dns_name, status active,
// the reckon id custom field and a description); an unmanaged asset with a
// name becomes a dcim.device when DeviceRole, DeviceType and Site are set
// (or fills the device an earlier push created, found by the reckon id
// custom field); a managed asset's device gets the reckon id and serial
// when they are empty. An existing record's field is written only when it
// is empty or listed in o.Owns (names: dns_name, description, status,
// serial, and the reckon id custom field's name).
//
// Every write carries o.Message as changelog_message. NetBox records it in
// the change log from 4.4 on; 4.2's schema has no such field, but its
// request schemas allow other properties and Django REST framework ignores
// fields it does not know, so 4.2 accepts the write and drops the message.
//
// A write NetBox refuses with a 4xx (a 400 with its reasons) is reported in
// its Change and the push goes on; 401, 403, a 5xx after retries or a
// network error ends the push with an error and the changes so far.
func (c *Client) Push(ctx context.Context, assets []cmdb.Asset, o cmdb.PushOptions) ([]cmdb.Change, error) {
	p := &pusher{c: c, o: o, owns: map[string]bool{}}
	for _, f := range o.Owns {
		p.owns[f] = true
	}
	for _, a := range assets {
		if err := p.asset(ctx, a); err != nil {
			return p.changes, err
		}
	}
	return p.changes, nil
}

type pusher struct {
	c       *Client
	o       cmdb.PushOptions
	owns    map[string]bool
	changes []cmdb.Change
	tag     *named
	dev     map[string]named // role, device_type, site
}

// refs looks up the tag (and the device defaults when withDevice) once.
func (p *pusher) refs(ctx context.Context, withDevice bool) error {
	lookup := func(path, slug, what string) (named, error) {
		rs, err := list[named](ctx, p.c, path, url.Values{"slug": {slug}})
		if err != nil {
			return named{}, err
		}
		if len(rs) != 1 {
			return named{}, fmt.Errorf("netbox: %s %q: not found at %s (create it in NetBox or fix the option)", what, slug, p.c.abs(path, nil))
		}
		return rs[0], nil
	}
	if p.tag == nil {
		t, err := lookup("/api/extras/tags/", p.c.o.Tag, "tag")
		if err != nil {
			return err
		}
		p.tag = &t
	}
	if withDevice && p.dev == nil {
		dev := map[string]named{}
		for _, x := range []struct{ field, path, slug string }{
			{"role", "/api/dcim/device-roles/", p.c.o.DeviceRole},
			{"device_type", "/api/dcim/device-types/", p.c.o.DeviceType},
			{"site", "/api/dcim/sites/", p.c.o.Site},
		} {
			n, err := lookup(x.path, x.slug, x.field)
			if err != nil {
				return err
			}
			dev[x.field] = n
		}
		p.dev = dev
	}
	return nil
}

func (p *pusher) asset(ctx context.Context, a cmdb.Asset) error {
	if err := p.refs(ctx, false); err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(a.CIID, "dcim.device:"):
		id, err := strconv.Atoi(strings.TrimPrefix(a.CIID, "dcim.device:"))
		if err != nil {
			p.changes = append(p.changes, cmdb.Change{AssetID: a.ID, Action: "update", Object: "dcim.device",
				ID: a.CIID, Message: p.o.Message, Error: "not a NetBox device id"})
			break
		}
		if err := p.fillDevice(ctx, a, url.Values{"id": {strconv.Itoa(id)}}); err != nil {
			return err
		}
	case a.Verdict == "unmanaged" && a.Name != "":
		if err := p.createDevice(ctx, a); err != nil {
			return err
		}
	}
	for _, ip := range a.IPs {
		if err := p.address(ctx, a, ip); err != nil {
			return err
		}
	}
	return nil
}

// cfEmpty says a custom field is unset (absent, null or "").
func cfEmpty(m map[string]json.RawMessage, k string) bool {
	raw, ok := m[k]
	return !ok || string(raw) == "null" || string(raw) == `""`
}

// fillDevice writes the reckon id and serial into the device matching q
// where they are empty (or owned).
func (p *pusher) fillDevice(ctx context.Context, a cmdb.Asset, q url.Values) error {
	rs, err := list[record](ctx, p.c, pathDevices, q)
	if err != nil {
		return err
	}
	if len(rs) != 1 {
		p.changes = append(p.changes, cmdb.Change{AssetID: a.ID, Action: "update", Object: "dcim.device",
			Message: p.o.Message, Error: fmt.Sprintf("%d devices match %s", len(rs), q.Encode())})
		return nil
	}
	d := rs[0]
	fields := map[string]any{}
	f := p.c.o.ReckonIDField
	if a.ID != "" && (cfEmpty(d.CustomFields, f) || p.owns[f]) && cfString(d.CustomFields, f) != a.ID {
		fields["custom_fields"] = map[string]any{f: a.ID}
	}
	if a.Serial != "" && (d.Serial == "" || p.owns["serial"]) && d.Serial != a.Serial {
		fields["serial"] = a.Serial
	}
	if len(fields) == 0 {
		return nil
	}
	return p.send(ctx, a.ID, "update", "dcim.device", d.ID, pathDevices, fields)
}

func (p *pusher) createDevice(ctx context.Context, a cmdb.Asset) error {
	// An earlier push may have created it already.
	q := url.Values{"cf_" + p.c.o.ReckonIDField: {a.ID}}
	rs, err := list[record](ctx, p.c, pathDevices, q)
	if err != nil {
		return err
	}
	if len(rs) > 0 {
		return p.fillDevice(ctx, a, q)
	}
	if p.c.o.DeviceRole == "" || p.c.o.DeviceType == "" || p.c.o.Site == "" {
		p.changes = append(p.changes, cmdb.Change{AssetID: a.ID, Action: "create", Object: "dcim.device",
			Fields: map[string]any{"name": a.Name}, Message: p.o.Message,
			Error: "not created: NetBox needs a role, a device type and a site; set the netbox device_role, device_type and site options"})
		return nil
	}
	if err := p.refs(ctx, true); err != nil {
		return err
	}
	fields := map[string]any{"name": a.Name, "role": p.dev["role"].ref(), "device_type": p.dev["device_type"].ref(),
		"site": p.dev["site"].ref(), "status": "active", "tags": []any{p.tag.ref()},
		"custom_fields": map[string]any{p.c.o.ReckonIDField: a.ID}}
	if a.Serial != "" {
		fields["serial"] = a.Serial
	}
	return p.send(ctx, a.ID, "create", "dcim.device", 0, pathDevices, fields)
}

func describe(a cmdb.Asset) string {
	var parts []string
	for _, s := range []string{a.Vendor, a.Model, a.OS, a.DeviceType} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	d := "seen by reckon"
	if len(parts) > 0 {
		d += ": " + strings.Join(parts, ", ")
	}
	if len(d) > 200 {
		d = d[:200]
	}
	return d
}

// address makes sure ip exists in NetBox and fills its empty fields.
func (p *pusher) address(ctx context.Context, a cmdb.Asset, ip netip.Addr) error {
	ip = ip.Unmap()
	rs, err := list[record](ctx, p.c, pathIPs, url.Values{"address": {ip.String()}})
	if err != nil {
		return err
	}
	name := ""
	if a.Name != "" && len(a.Name) <= 255 && dnsName.MatchString(a.Name) {
		name = a.Name
	}
	f := p.c.o.ReckonIDField
	switch len(rs) {
	case 0:
		fields := map[string]any{"address": netip.PrefixFrom(ip, ip.BitLen()).String(), "status": "active",
			"tags": []any{p.tag.ref()}, "custom_fields": map[string]any{f: a.ID}, "description": describe(a)}
		if name != "" {
			fields["dns_name"] = name
		}
		return p.send(ctx, a.ID, "create", "ipam.ipaddress", 0, pathIPs, fields)
	case 1:
	default:
		// The same address in several VRFs: which one is this asset's is
		// not reckon's to guess.
		p.changes = append(p.changes, cmdb.Change{AssetID: a.ID, Action: "update", Object: "ipam.ipaddress",
			Fields: map[string]any{"address": ip.String()}, Message: p.o.Message,
			Error: fmt.Sprintf("not updated: %s is in %d NetBox records", ip, len(rs))})
		return nil
	}
	r := rs[0]
	fields := map[string]any{}
	set := func(field, cur, want string) {
		if want != "" && cur != want && (cur == "" || p.owns[field]) {
			fields[field] = want
		}
	}
	set("dns_name", r.DNSName, name)
	set("description", r.Description, describe(a))
	set("status", r.Status.Value, "active")
	if a.ID != "" && (cfEmpty(r.CustomFields, f) || p.owns[f]) && cfString(r.CustomFields, f) != a.ID {
		fields["custom_fields"] = map[string]any{f: a.ID}
	}
	if len(fields) == 0 {
		return nil
	}
	return p.send(ctx, a.ID, "update", "ipam.ipaddress", r.ID, pathIPs, fields)
}

// send makes one write (none in a dry run) and records its Change.
func (p *pusher) send(ctx context.Context, assetID, action, object string, id int, path string, fields map[string]any) error {
	ch := cmdb.Change{AssetID: assetID, Action: action, Object: object, Fields: fields, Message: p.o.Message}
	if id != 0 {
		ch.ID = object + ":" + strconv.Itoa(id)
	}
	if p.o.DryRun {
		p.changes = append(p.changes, ch)
		return nil
	}
	body := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		body[k] = v
	}
	if p.o.Message != "" {
		body["changelog_message"] = p.o.Message
	}
	method, u := http.MethodPost, p.c.abs(path, nil)
	if id != 0 {
		method, u = http.MethodPatch, p.c.abs(path+strconv.Itoa(id)+"/", nil)
	}
	var out struct {
		ID int `json:"id"`
	}
	err := p.c.do(ctx, method, u, body, &out)
	var se *StatusError
	switch {
	case err == nil:
		if id == 0 {
			ch.ID = object + ":" + strconv.Itoa(out.ID)
		}
	case errors.As(err, &se) && se.Status >= 400 && se.Status < 500 && !errors.Is(err, ErrUnauthorized) &&
		se.Status != http.StatusTooManyRequests:
		ch.Error = fmt.Sprintf("%d %s", se.Status, se.Body)
	default:
		return fmt.Errorf("netbox push of asset %s: %w", assetID, err)
	}
	p.changes = append(p.changes, ch)
	return nil
}
