package servicenowtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// MaxItems is the most items the emulator accepts in one IRE payload.
const MaxItems = 500

const hardwareRuleEntry = "556eb250c3400200d8d4bea192d3ae92"

var (
	itemKeys     = []string{"className", "values", "lookup", "related", "internal_id", "settings", "sys_object_source_info"}
	sourceKeys   = []string{"source_name", "source_native_key", "source_feed", "source_recency_timestamp"}
	settingsKeys = []string{"updateWithoutUpgrade", "updateWithoutDowngrade", "updateWithoutSwitch", "skipReclassificationRestrictionRules"}
)

type inItem struct {
	ClassName string
	Values    map[string]string
	Lookup    []inLookup
	Source    map[string]string
}

type inLookup struct {
	ClassName string
	Values    map[string]string
}

type inRelation struct {
	Parent, Child int
	Type          string
}

// ire serves POST /api/now/identifyreconcile[/query].
func (s *Server) ire(w http.ResponseWriter, r *http.Request, dry bool) {
	ds := r.URL.Query().Get("sysparm_data_source")
	if ds != "" && !slices.Contains(s.DataSources, ds) {
		writeError(w, http.StatusBadRequest, "Invalid data source "+ds, "sysparm_data_source must be a choice of cmdb_ci.discovery_source")
		return
	}
	if ds == "" {
		ds = "ServiceNow"
	}
	var body bytes.Buffer
	body.ReadFrom(r.Body)
	items, rels, err := parsePayload(body.Bytes())
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid input payload", err.Error())
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]map[string]any, 0, len(items))
	for i, it := range items {
		out = append(out, s.reconcile(i, it, ds, dry))
	}
	relOut := make([]map[string]any, 0, len(rels))
	for i := range rels {
		relOut = append(relOut, map[string]any{"className": "cmdb_rel_ci", "operation": "INSERT", "markers": []any{},
			"inputIndices": []int{i}, "mergedPayloadIds": []any{}, "errorCount": 0})
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	json.NewEncoder(w).Encode(map[string]any{"result": map[string]any{"items": out, "additionalCommittedItems": []any{},
		"relations": relOut, "additionalCommittedRelations": []any{}}})
}

// parsePayload checks a payload's shape strictly: unknown keys, missing
// className or values, more than MaxItems items, bad source info.
func parsePayload(b []byte) ([]inItem, []inRelation, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("body is not a JSON object: %v", err)
	}
	for k := range doc {
		if k != "items" && k != "relations" && k != "referenceItems" {
			return nil, nil, fmt.Errorf("unknown key %q", k)
		}
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(doc["items"], &raw); err != nil || raw == nil {
		return nil, nil, fmt.Errorf("items must be an array")
	}
	if len(raw) == 0 {
		return nil, nil, fmt.Errorf("items is empty")
	}
	if len(raw) > MaxItems {
		return nil, nil, fmt.Errorf("%d items: at most %d per payload", len(raw), MaxItems)
	}
	items := make([]inItem, len(raw))
	for i, m := range raw {
		it := &items[i]
		for k := range m {
			if !slices.Contains(itemKeys, k) {
				return nil, nil, fmt.Errorf("items[%d]: unknown key %q", i, k)
			}
		}
		if err := json.Unmarshal(m["className"], &it.ClassName); err != nil || it.ClassName == "" {
			return nil, nil, fmt.Errorf("items[%d]: className is required", i)
		}
		if _, ok := parents[it.ClassName]; !ok {
			return nil, nil, fmt.Errorf("items[%d]: unknown class %q", i, it.ClassName)
		}
		var err error
		if it.Values, err = stringMap(m["values"]); err != nil {
			return nil, nil, fmt.Errorf("items[%d]: values: %v", i, err)
		}
		for k := range it.Values {
			if strings.HasPrefix(k, "sys_") && k != "sys_id" && k != "sys_class_name" {
				return nil, nil, fmt.Errorf("items[%d]: values: %q is a system field", i, k)
			}
		}
		if l, ok := m["lookup"]; ok {
			var ls []map[string]json.RawMessage
			if err := json.Unmarshal(l, &ls); err != nil {
				return nil, nil, fmt.Errorf("items[%d]: lookup must be an array", i)
			}
			for j, lm := range ls {
				var lk inLookup
				if err := json.Unmarshal(lm["className"], &lk.ClassName); err != nil || lk.ClassName == "" {
					return nil, nil, fmt.Errorf("items[%d].lookup[%d]: className is required", i, j)
				}
				if lk.Values, err = stringMap(lm["values"]); err != nil {
					return nil, nil, fmt.Errorf("items[%d].lookup[%d]: values: %v", i, j, err)
				}
				it.Lookup = append(it.Lookup, lk)
			}
		}
		if st, ok := m["settings"]; ok {
			var sm map[string]bool
			if err := json.Unmarshal(st, &sm); err != nil {
				return nil, nil, fmt.Errorf("items[%d]: settings must map names to booleans", i)
			}
			for k := range sm {
				if !slices.Contains(settingsKeys, k) {
					return nil, nil, fmt.Errorf("items[%d]: unknown setting %q", i, k)
				}
			}
		}
		if src, ok := m["sys_object_source_info"]; ok {
			if it.Source, err = stringMap(src); err != nil {
				return nil, nil, fmt.Errorf("items[%d]: sys_object_source_info: %v", i, err)
			}
			for k := range it.Source {
				if !slices.Contains(sourceKeys, k) {
					return nil, nil, fmt.Errorf("items[%d]: sys_object_source_info: unknown key %q", i, k)
				}
			}
			if it.Source["source_name"] == "" || it.Source["source_native_key"] == "" {
				return nil, nil, fmt.Errorf("items[%d]: sys_object_source_info needs source_name and source_native_key", i)
			}
			if ts, ok := it.Source["source_recency_timestamp"]; ok {
				if _, err := time.Parse(snTime, ts); err != nil {
					return nil, nil, fmt.Errorf("items[%d]: source_recency_timestamp %q is not YYYY-MM-DD hh:mm:ss", i, ts)
				}
			}
		}
	}
	var rels []inRelation
	if rr, ok := doc["relations"]; ok {
		var raws []struct {
			Parent *int   `json:"parent"`
			Child  *int   `json:"child"`
			Type   string `json:"type"`
		}
		if err := json.Unmarshal(rr, &raws); err != nil {
			return nil, nil, fmt.Errorf("relations: %v", err)
		}
		for j, x := range raws {
			if x.Parent == nil || x.Child == nil || *x.Parent < 0 || *x.Parent >= len(items) || *x.Child < 0 || *x.Child >= len(items) || x.Type == "" {
				return nil, nil, fmt.Errorf("relations[%d]: parent, child (item indexes) and type are required", j)
			}
			rels = append(rels, inRelation{*x.Parent, *x.Child, x.Type})
		}
	}
	return items, rels, nil
}

// stringMap reads a required JSON object of scalars as strings.
func stringMap(b json.RawMessage) (map[string]string, error) {
	if b == nil {
		return nil, fmt.Errorf("required")
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, fmt.Errorf("must be an object")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = v
		case float64, bool:
			out[k] = fmt.Sprint(v)
		case nil:
			out[k] = ""
		default:
			return nil, fmt.Errorf("%q is not a scalar", k)
		}
	}
	return out, nil
}

func attempt(result, table string, attrs ...string) map[string]any {
	return map[string]any{"identifierName": "Hardware Rule", "attemptResult": result, "attributes": attrs,
		"searchOnTable": table, "hybridEntryCiAttributes": []any{}}
}

// identify runs the emulated Hardware Rule over the CIs: sys_id, source
// native key, serial number, name, then adapter MAC + name.
func (s *Server) identify(it inItem) (*record, []map[string]any) {
	var tries []map[string]any
	ci := func(pred func(*record) bool) *record {
		for _, r := range s.recs {
			if r.class != "cmdb_ci_network_adapter" && pred(r) {
				return r
			}
		}
		return nil
	}
	if id := it.Values["sys_id"]; id != "" {
		if r := ci(func(r *record) bool { return r.f["sys_id"] == id }); r != nil {
			return r, append(tries, attempt("MATCHED", "cmdb_ci", "sys_id"))
		}
		tries = append(tries, attempt("NO_MATCH", "cmdb_ci", "sys_id"))
	}
	if it.Source != nil {
		id, ok := s.sources[it.Source["source_name"]+"\x00"+it.Source["source_native_key"]]
		res := "NO_MATCH"
		if ok {
			res = "MATCHED"
		}
		tries = append(tries, map[string]any{"info": "sys_object_source " + res, "identifierName": "", "attemptResult": res,
			"attributes": []any{}, "hybridEntryCiAttributes": []any{}})
		if ok {
			if r := s.find(id); r != nil {
				return r, tries
			}
		}
	}
	serialLookup := false
	for _, l := range it.Lookup {
		serialLookup = serialLookup || l.ClassName == "cmdb_serial_number"
	}
	if serialLookup {
		tries = append(tries, attempt("NO_MATCH", "cmdb_serial_number", "serial_number", "serial_number_type"))
	} else {
		tries = append(tries, attempt("SKIPPED", "cmdb_serial_number", "serial_number", "serial_number_type"))
	}
	for _, f := range []string{"serial_number", "name"} {
		v := it.Values[f]
		if v == "" {
			tries = append(tries, attempt("SKIPPED", "cmdb_ci_hardware", f))
			continue
		}
		if r := ci(func(r *record) bool { return strings.EqualFold(r.f[f], v) }); r != nil {
			return r, append(tries, attempt("MATCHED", "cmdb_ci_hardware", f))
		}
		tries = append(tries, attempt("NO_MATCH", "cmdb_ci_hardware", f))
	}
	var macs []inLookup
	for _, l := range it.Lookup {
		if l.ClassName == "cmdb_ci_network_adapter" && l.Values["mac_address"] != "" && l.Values["name"] != "" {
			macs = append(macs, l)
		}
	}
	if len(macs) == 0 {
		return nil, append(tries, attempt("SKIPPED", "cmdb_ci_network_adapter", "mac_address", "name"))
	}
	for _, l := range macs {
		for _, r := range s.recs {
			if r.class == "cmdb_ci_network_adapter" && strings.EqualFold(r.f["mac_address"], l.Values["mac_address"]) &&
				r.f["name"] == l.Values["name"] {
				if c := s.find(r.f["cmdb_ci"]); c != nil {
					return c, append(tries, attempt("MATCHED", "cmdb_ci_network_adapter", "mac_address", "name"))
				}
			}
		}
	}
	return nil, append(tries, attempt("NO_MATCH", "cmdb_ci_network_adapter", "mac_address", "name"))
}

// reconcile identifies one item and, unless dry, writes it. Caller holds mu.
func (s *Server) reconcile(i int, it inItem, ds string, dry bool) map[string]any {
	out := map[string]any{"className": it.ClassName, "identifierEntrySysId": hardwareRuleEntry, "markers": []any{},
		"inputIndices": []int{i}, "mergedPayloadIds": []any{}, "errorCount": 0}
	if len(it.Lookup) > 0 {
		related := make([]map[string]any, len(it.Lookup))
		ids := make([]any, len(it.Lookup))
		for j, l := range it.Lookup {
			related[j] = map[string]any{"markers": []any{}, "inputIndices": []map[string]int{{"mainIndex": i, "subIndex": j}},
				"mergedPayloadIds": []any{}, "className": l.ClassName}
		}
		out["relatedSysIds"], out["relatedItems"], out["additionalRelatedItems"] = ids, related, []any{}
	}
	fail := func(code, msg string) map[string]any {
		out["operation"], out["sysId"] = "NO_CHANGE", "Unknown"
		out["errors"] = []map[string]string{{"error": code, "message": msg}}
		out["errorCount"] = 1
		return out
	}
	if it.Source != nil {
		if f, ok := s.failKeys[it.Source["source_native_key"]]; ok {
			out["identificationAttempts"] = []any{}
			return fail(f[0], f[1])
		}
	}
	hasAdapter := false
	for _, l := range it.Lookup {
		hasAdapter = hasAdapter || (l.ClassName == "cmdb_ci_network_adapter" && l.Values["mac_address"] != "")
	}
	if it.Values["sys_id"] == "" && it.Source == nil && it.Values["serial_number"] == "" && it.Values["name"] == "" && !hasAdapter {
		out["identificationAttempts"] = []any{}
		return fail("MISSING_MATCHING_ATTRIBUTES", "In payload missing minimum set of input values for criterion (matching) attributes from identify rule for table [cmdb_ci_hardware].")
	}
	rec, tries := s.identify(it)
	out["identificationAttempts"] = tries
	now := s.Now().UTC().Format(snTime)
	vals := map[string]string{}
	for k, v := range it.Values {
		if k != "sys_id" && k != "sys_class_name" {
			vals[k] = v
		}
	}
	if rec == nil {
		out["operation"] = "INSERT"
		if dry {
			out["sysId"] = "Unknown"
			return out
		}
		id := s.newID()
		f := map[string]string{"sys_id": id, "sys_class_name": it.ClassName, "install_status": "1", "sys_updated_on": now,
			"discovery_source": ds, "last_discovered": now}
		for k, v := range vals {
			f[k] = v
		}
		s.recs = append(s.recs, &record{class: it.ClassName, f: f})
		s.addAdapters(id, it, now, out)
		s.remember(it, id)
		s.writes = append(s.writes, Write{Op: "INSERT", Class: it.ClassName, SysID: id, Values: vals, DataSource: ds})
		out["sysId"] = id
		return out
	}
	id := rec.f["sys_id"]
	out["sysId"] = id
	changed := map[string]string{}
	for k, v := range vals {
		if rec.f[k] != v {
			changed[k] = v
		}
	}
	if len(changed) == 0 {
		out["operation"] = "NO_CHANGE"
	} else {
		out["operation"] = "UPDATE"
	}
	if dry {
		return out
	}
	s.remember(it, id)
	s.addAdapters(id, it, now, out)
	rec.f["last_discovered"], rec.f["discovery_source"] = now, ds
	if len(changed) > 0 {
		for k, v := range changed {
			rec.f[k] = v
		}
		rec.f["sys_updated_on"] = now
		s.writes = append(s.writes, Write{Op: "UPDATE", Class: rec.class, SysID: id, Values: changed, DataSource: ds})
	}
	return out
}

func (s *Server) remember(it inItem, id string) {
	if it.Source != nil {
		s.sources[it.Source["source_name"]+"\x00"+it.Source["source_native_key"]] = id
	}
}

// addAdapters creates the item's adapter lookups the CI lacks and fills
// relatedSysIds.
func (s *Server) addAdapters(ciID string, it inItem, now string, out map[string]any) {
	ids, _ := out["relatedSysIds"].([]any)
	for j, l := range it.Lookup {
		if l.ClassName != "cmdb_ci_network_adapter" {
			continue
		}
		var found *record
		for _, r := range s.recs {
			if r.class == l.ClassName && r.f["cmdb_ci"] == ciID && strings.EqualFold(r.f["mac_address"], l.Values["mac_address"]) {
				found = r
			}
		}
		if found == nil {
			found = &record{class: l.ClassName, f: map[string]string{"sys_id": s.newID(), "sys_class_name": l.ClassName,
				"cmdb_ci": ciID, "sys_updated_on": now}}
			for k, v := range l.Values {
				found.f[k] = v
			}
			s.recs = append(s.recs, found)
		}
		if j < len(ids) {
			ids[j] = found.f["sys_id"]
		}
	}
}
