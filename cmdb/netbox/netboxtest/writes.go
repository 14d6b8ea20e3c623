package netboxtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Writes served: POST (one object or a list, all or none) to the device
// and ip-address lists, PATCH of one device or ip-address. They change the
// emulator's dataset (last_updated = now) and answer with the rendered
// record, as NetBox does. Unknown body fields are ignored, as Django REST
// framework does (changelog_message among them before NetBox 4.4); the
// request bodies are in Requests.

// detail splits "/api/ipam/ip-addresses/12/" into the list path and 12.
func detail(path string) (string, int, bool) {
	trim := strings.TrimSuffix(path, "/")
	i := strings.LastIndexByte(trim, '/')
	if i < 0 {
		return "", 0, false
	}
	id, err := strconv.Atoi(trim[i+1:])
	if err != nil || id <= 0 {
		return "", 0, false
	}
	return trim[:i+1], id, true
}

// fieldErrors is NetBox's 400 body: field -> messages.
type fieldErrors map[string][]string

func (e fieldErrors) add(field, format string, a ...any) {
	e[field] = append(e[field], fmt.Sprintf(format, a...))
}

func (s *Server) write(w *recorder, r *http.Request) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var body bytes.Buffer
	_, _ = body.ReadFrom(r.Body)
	list, id, isDetail := r.URL.Path, 0, false
	if l, n, ok := detail(r.URL.Path); ok {
		list, id, isDetail = l, n, true
	}
	if list != PathIPs && list != PathDevices {
		w.status = http.StatusMethodNotAllowed
		w.body.WriteString(`{"detail": "Method \"` + r.Method + `\" not allowed."}`)
		return
	}
	bad := func(v any) {
		w.status = http.StatusBadRequest
		w.body.Write(mustJSON(v))
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	switch {
	case r.Method == http.MethodPost && !isDetail:
		var objs []map[string]json.RawMessage
		bulk := bytes.HasPrefix(bytes.TrimSpace(body.Bytes()), []byte("["))
		if bulk {
			if err := json.Unmarshal(body.Bytes(), &objs); err != nil {
				bad(map[string]string{"detail": "JSON parse error - " + err.Error()})
				return
			}
		} else {
			var o map[string]json.RawMessage
			if err := json.Unmarshal(body.Bytes(), &o); err != nil {
				bad(map[string]string{"detail": "JSON parse error - " + err.Error()})
				return
			}
			objs = []map[string]json.RawMessage{o}
		}
		next := s.data.clone()
		var ids []int
		var errs []fieldErrors
		failed := false
		for _, o := range objs {
			fe := fieldErrors{}
			var newID int
			if list == PathIPs {
				newID = s.createIP(&next, o, fe, now)
			} else {
				newID = s.createDevice(&next, o, fe, now)
			}
			errs = append(errs, fe)
			ids = append(ids, newID)
			failed = failed || len(fe) > 0
		}
		if failed {
			if bulk {
				bad(errs)
			} else {
				bad(errs[0])
			}
			return
		}
		s.data = next
		s.render()
		w.status = http.StatusCreated
		if bulk {
			w.body.WriteByte('[')
			for i, id := range ids {
				if i > 0 {
					w.body.WriteByte(',')
				}
				w.body.Write(s.rendered(list, id))
			}
			w.body.WriteByte(']')
		} else {
			w.body.Write(s.rendered(list, ids[0]))
		}
	case r.Method == http.MethodPatch && isDetail:
		var o map[string]json.RawMessage
		if err := json.Unmarshal(body.Bytes(), &o); err != nil {
			bad(map[string]string{"detail": "JSON parse error - " + err.Error()})
			return
		}
		next := s.data.clone()
		fe := fieldErrors{}
		found := false
		if list == PathIPs {
			found = s.patchIP(&next, id, o, fe, now)
		} else {
			found = s.patchDevice(&next, id, o, fe, now)
		}
		if !found {
			w.status = http.StatusNotFound
			w.body.WriteString(`{"detail": "No IPAddress matches the given query."}`)
			if list == PathDevices {
				w.body.Reset()
				w.body.WriteString(`{"detail": "No Device matches the given query."}`)
			}
			return
		}
		if len(fe) > 0 {
			bad(fe)
			return
		}
		s.data = next
		s.render()
		w.body.Write(s.rendered(list, id))
	default:
		w.status = http.StatusMethodNotAllowed
		w.body.WriteString(`{"detail": "Method \"` + r.Method + `\" not allowed."}`)
	}
}

// rendered is the JSON of record id of list path.
func (s *Server) rendered(path string, id int) []byte {
	s.mu.Lock()
	t := s.tables[path]
	s.mu.Unlock()
	for i := range t.recs {
		if t.recs[i].id == id {
			return t.recs[i].raw
		}
	}
	return []byte("null")
}

// related resolves a related object given by id or by a dict of
// attributes that must all match, as NetBox's nested serializers do; the
// string is NetBox's message when it does not resolve.
func (s *Server) related(path string, raw json.RawMessage) (*briefObj, string) {
	var id int
	if json.Unmarshal(raw, &id) == nil {
		for _, b := range s.named[path] {
			if b.ID == id {
				return b, ""
			}
		}
		return nil, fmt.Sprintf("Invalid pk \"%d\" - object does not exist.", id)
	}
	var attrs map[string]any
	if err := json.Unmarshal(raw, &attrs); err != nil {
		return nil, fmt.Sprintf("Related objects must be referenced by numeric ID or by dictionary of attributes. Received an unrecognized value: %s", raw)
	}
	var hits []*briefObj
	for _, b := range s.named[path] {
		ok := true
		for k, v := range attrs {
			switch k {
			case "name", "model":
				ok = ok && v == b.Name
			case "slug":
				ok = ok && v == b.Slug
			case "manufacturer":
				m, _ := v.(map[string]any)
				ok = ok && path == PathDeviceTypes && m != nil &&
					(m["name"] == nil || m["name"] == "Generic") && (m["slug"] == nil || m["slug"] == "generic")
			case "description":
				ok = ok && v == b.Description
			default:
				ok = false
			}
		}
		if ok {
			hits = append(hits, b)
		}
	}
	switch len(hits) {
	case 0:
		return nil, fmt.Sprintf("Related object not found using the provided attributes: %s", raw)
	case 1:
		return hits[0], ""
	}
	return nil, fmt.Sprintf("Multiple objects match the provided attributes: %s", raw)
}

func str(raw json.RawMessage) (string, bool) {
	var v string
	return v, json.Unmarshal(raw, &v) == nil
}

// common applies the fields devices and addresses share.
func (s *Server) common(o map[string]json.RawMessage, fe fieldErrors, tags *[]string, cfs *map[string]any, desc *string) {
	if raw, ok := o["tags"]; ok {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			fe.add("tags", "Expected a list of items.")
		}
		var names []string
		for _, it := range items {
			b, msg := s.related(PathTags, it)
			if msg != "" {
				fe.add("tags", "%s", msg)
				continue
			}
			names = append(names, b.Name)
		}
		*tags = names
	}
	if raw, ok := o["custom_fields"]; ok {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			fe.add("custom_fields", "Invalid data format. Custom field data must be passed as a dictionary.")
		}
		// A write merges into the existing data (netbox/api/fields.py
		// CustomFieldsDataField on partial updates).
		if *cfs == nil {
			*cfs = map[string]any{}
		}
		for k, v := range m {
			(*cfs)[k] = v
		}
	}
	if raw, ok := o["description"]; ok {
		if v, ok := str(raw); ok {
			*desc = v
		} else {
			fe.add("description", "Not a valid string.")
		}
	}
}

func (s *Server) ipFields(ip *IPAddress, o map[string]json.RawMessage, fe fieldErrors) {
	if raw, ok := o["address"]; ok {
		v, _ := str(raw)
		if p, err := netip.ParsePrefix(v); err == nil {
			ip.Address = p.String()
		} else if a, err := netip.ParseAddr(v); err == nil {
			ip.Address = netip.PrefixFrom(a, a.BitLen()).String()
		} else {
			fe.add("address", "Enter a valid IPv4 or IPv6 address with optional mask.")
		}
	}
	for k, dst := range map[string]*string{"status": &ip.Status, "dns_name": &ip.DNSName} {
		if raw, ok := o[k]; ok {
			if v, ok := str(raw); ok {
				*dst = v
			} else {
				fe.add(k, "Not a valid string.")
			}
		}
	}
	s.common(o, fe, &ip.Tags, &ip.CustomFields, &ip.Description)
}

func nextID[T any](xs []T, id func(*T) int) int {
	n := 0
	for i := range xs {
		n = max(n, id(&xs[i]))
	}
	return n + 1
}

func (s *Server) createIP(d *Dataset, o map[string]json.RawMessage, fe fieldErrors, now time.Time) int {
	if _, ok := o["address"]; !ok {
		fe.add("address", "This field is required.")
		return 0
	}
	ip := IPAddress{ID: nextID(d.IPs, func(a *IPAddress) int { return a.ID }), LastUpdated: now}
	s.ipFields(&ip, o, fe)
	d.IPs = append(d.IPs, ip)
	return ip.ID
}

func (s *Server) patchIP(d *Dataset, id int, o map[string]json.RawMessage, fe fieldErrors, now time.Time) bool {
	for i := range d.IPs {
		if d.IPs[i].ID == id {
			s.ipFields(&d.IPs[i], o, fe)
			d.IPs[i].LastUpdated = now
			return true
		}
	}
	return false
}

func (s *Server) deviceFields(d *Dataset, dv *Device, o map[string]json.RawMessage, fe fieldErrors) {
	for k, path := range map[string]string{"site": PathSites, "role": PathRoles, "device_type": PathDeviceTypes} {
		raw, ok := o[k]
		if !ok {
			continue
		}
		b, msg := s.related(path, raw)
		if msg != "" {
			fe.add(k, "%s", msg)
			continue
		}
		switch k {
		case "site":
			dv.Site = b.Name
		case "role":
			dv.Role = b.Name
		default:
			dv.DeviceType = b.Name
		}
	}
	for k, dst := range map[string]*string{"name": &dv.Name, "serial": &dv.Serial, "status": &dv.Status, "asset_tag": &dv.AssetTag} {
		if raw, ok := o[k]; ok {
			if string(raw) == "null" {
				*dst = ""
			} else if v, ok := str(raw); ok {
				*dst = v
			} else {
				fe.add(k, "Not a valid string.")
			}
		}
	}
	s.common(o, fe, &dv.Tags, &dv.CustomFields, &dv.Description)
	// dcim/models/devices.py: unique (lower(name), site) without a tenant,
	// and a unique asset tag.
	for _, other := range d.Devices {
		if other.ID == dv.ID {
			continue
		}
		if dv.Name != "" && strings.EqualFold(other.Name, dv.Name) && other.Site == dv.Site && other.Tenant == "" && dv.Tenant == "" {
			fe.add("__all__", "Device name must be unique per site.")
		}
		if dv.AssetTag != "" && other.AssetTag == dv.AssetTag {
			fe.add("asset_tag", "Device with this Asset tag already exists.")
		}
	}
}

func (s *Server) createDevice(d *Dataset, o map[string]json.RawMessage, fe fieldErrors, now time.Time) int {
	for _, k := range []string{"device_type", "role", "site"} {
		if _, ok := o[k]; !ok {
			fe.add(k, "This field is required.")
		}
	}
	if len(fe) > 0 {
		return 0
	}
	dv := Device{ID: nextID(d.Devices, func(x *Device) int { return x.ID }), Created: now, LastUpdated: now}
	s.deviceFields(d, &dv, o, fe)
	d.Devices = append(d.Devices, dv)
	return dv.ID
}

func (s *Server) patchDevice(d *Dataset, id int, o map[string]json.RawMessage, fe fieldErrors, now time.Time) bool {
	i := slices.IndexFunc(d.Devices, func(x Device) bool { return x.ID == id })
	if i < 0 {
		return false
	}
	s.deviceFields(d, &d.Devices[i], o, fe)
	d.Devices[i].LastUpdated = now
	return true
}

// Data returns a copy of the dataset as it is now (after writes).
func (s *Server) Data() Dataset {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.data.clone()
}
