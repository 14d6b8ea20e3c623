package servicenowtest

import (
	"fmt"
	"slices"
	"strings"
)

// term is one condition of an encoded query.
type term struct {
	field, op string
	values    []string
}

type query struct {
	terms []term
	order []string // fields, "-" prefix for descending
}

// parseQuery reads the encoded query subset: terms joined by ^ (AND),
// field op value with op one of = != >= <= > < IN (comma list), and
// ORDERBYfield / ORDERBYDESCfield. Anything else is an error, so that a
// client sending what the emulator does not understand fails loudly
// rather than reading everything (as some instances do with bad queries).
func parseQuery(s string) (query, error) {
	var q query
	if s == "" {
		return q, nil
	}
	for _, t := range strings.Split(s, "^") {
		switch {
		case t == "":
			continue
		case strings.HasPrefix(t, "ORDERBYDESC"):
			q.order = append(q.order, "-"+t[len("ORDERBYDESC"):])
			continue
		case strings.HasPrefix(t, "ORDERBY"):
			q.order = append(q.order, t[len("ORDERBY"):])
			continue
		case strings.HasPrefix(t, "OR") || strings.HasPrefix(t, "NQ") || strings.HasPrefix(t, "EQ"):
			return q, fmt.Errorf("unsupported query term %q", t)
		}
		i := 0
		for i < len(t) && (t[i] >= 'a' && t[i] <= 'z' || t[i] >= '0' && t[i] <= '9' || t[i] == '_' || t[i] == '.') {
			i++
		}
		f, rest := t[:i], t[i:]
		if f == "" {
			return q, fmt.Errorf("invalid query term %q", t)
		}
		var op string
		for _, o := range []string{">=", "<=", "!=", ">", "<", "=", "IN"} {
			if strings.HasPrefix(rest, o) {
				op = o
				break
			}
		}
		if op == "" {
			return q, fmt.Errorf("unsupported operator in query term %q", t)
		}
		v := rest[len(op):]
		vals := []string{v}
		if op == "IN" {
			vals = strings.Split(v, ",")
		}
		q.terms = append(q.terms, term{f, op, vals})
	}
	return q, nil
}

func (q query) match(s *Server, rec *record) bool {
	for _, t := range q.terms {
		v := s.field(rec, t.field)
		var ok bool
		switch t.op {
		case "=":
			ok = v == t.values[0]
		case "!=":
			ok = v != t.values[0]
		case ">=":
			ok = v >= t.values[0]
		case "<=":
			ok = v <= t.values[0]
		case ">":
			ok = v > t.values[0]
		case "<":
			ok = v < t.values[0]
		case "IN":
			ok = slices.Contains(t.values, v)
		}
		if !ok {
			return false
		}
	}
	return true
}

// sort orders by the ORDERBY fields, then (like ServiceNow with no order)
// keeps the store's order.
func (q query) sort(recs []*record) {
	slices.SortStableFunc(recs, func(a, b *record) int {
		for _, o := range q.order {
			desc := strings.HasPrefix(o, "-")
			f := strings.TrimPrefix(o, "-")
			if c := strings.Compare(a.f[f], b.f[f]); c != 0 {
				if desc {
					return -c
				}
				return c
			}
		}
		return 0
	})
}
