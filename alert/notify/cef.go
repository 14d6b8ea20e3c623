package notify

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// formatCEF renders n as a CEF event (ArcSight Common Event Format, version 0):
//
//	CEF:0|reckon|reckon|<version>|<kind>:<check or kind>|<title>|<severity 0-10>|<extensions>
//
// The check is Detail["check"] or Detail["check_id"] when a string. Extensions, each left
// out when empty: rt (milliseconds since the epoch), externalId (alert id),
// act (event), cat (kind), cs1 asset, cs2 team, cs3 condition, cs4 workflow,
// cs5 notification id, cs6 group (each csN with its csNLabel), cnt (count)
// and msg (Detail["message"], or the detail as "key=value; …", at most 1023
// bytes).
func formatCEF(n *Notification, version string) string {
	kind := n.Kind
	if kind == "" {
		kind = "alert"
	}
	sig := kind
	for _, k := range []string{"check", "check_id"} {
		if c, ok := n.Detail[k].(string); ok && c != "" {
			sig = c
			break
		}
	}
	var b strings.Builder
	b.WriteString("CEF:0|reckon|reckon|")
	for _, f := range []string{version, kind + ":" + sig, truncate(n.Title, 512)} {
		b.WriteString(cefHeader(f))
		b.WriteByte('|')
	}
	b.WriteString(strconv.Itoa(cefSeverity(n.Severity)))
	b.WriteByte('|')
	sep := ""
	ext := func(key, value string) {
		if value == "" {
			return
		}
		b.WriteString(sep)
		sep = " "
		b.WriteString(key)
		b.WriteByte('=')
		b.WriteString(cefValue(value))
	}
	custom := func(n int, label, value string) {
		if value == "" {
			return
		}
		ext("cs"+strconv.Itoa(n)+"Label", label)
		ext("cs"+strconv.Itoa(n), value)
	}
	if !n.At.IsZero() {
		ext("rt", strconv.FormatInt(n.At.UnixMilli(), 10))
	}
	ext("externalId", n.AlertID)
	ext("act", n.Event)
	ext("cat", n.Kind)
	custom(1, "asset", n.AssetID)
	custom(2, "team", n.Team)
	custom(3, "condition", n.Condition)
	custom(4, "workflow", n.Workflow)
	custom(5, "notification", n.ID)
	custom(6, "group", n.Group)
	if n.Count > 0 {
		ext("cnt", strconv.Itoa(n.Count))
	}
	ext("msg", truncate(detailSummary(n.Detail), 1023))
	return b.String()
}

// cefSeverity maps a notification severity to CEF's 0–10: info 1, low 3,
// medium 5, high 8, critical 10; an unknown one counts as 5.
func cefSeverity(sev string) int {
	switch sev {
	case "info":
		return 1
	case "low":
		return 3
	case "medium":
		return 5
	case "high":
		return 8
	case "critical":
		return 10
	}
	return 5
}

// cefHeader escapes a CEF header field: backslash and pipe; line breaks,
// which a header cannot hold, become spaces.
func cefHeader(v string) string {
	return strings.NewReplacer(`\`, `\\`, `|`, `\|`, "\r\n", " ", "\n", " ", "\r", " ").Replace(v)
}

// cefValue escapes a CEF extension value: backslash, equals sign and line breaks.
func cefValue(v string) string {
	return strings.NewReplacer(`\`, `\\`, `=`, `\=`, "\r", `\r`, "\n", `\n`).Replace(v)
}

// detailSummary is the short text of a notification's detail for CEF's msg.
func detailSummary(d map[string]any) string {
	if m, ok := d["message"].(string); ok && m != "" {
		return m
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+detailValue(d[k]))
	}
	return strings.Join(parts, "; ")
}

func detailValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case fmt.Stringer:
		return v.String()
	}
	if j, err := json.Marshal(v); err == nil {
		return string(j)
	}
	return fmt.Sprint(v)
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
