package inventory

import (
	"encoding/json"
	"unique"
)

// Sym is an interned string: one copy per distinct value however many
// records hold it (sources, products, versions, kinds repeat across a
// million devices), in 8 bytes. In JSON it is a plain string.
type Sym struct{ h unique.Handle[string] }

// S interns s.
func S(s string) Sym {
	if s == "" {
		return Sym{}
	}
	return Sym{unique.Make(s)}
}

// String returns the value ("" for the zero Sym).
func (s Sym) String() string {
	if s == (Sym{}) {
		return ""
	}
	return s.h.Value()
}

func (s Sym) MarshalJSON() ([]byte, error) {
	v := s.String()
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			return json.Marshal(v)
		}
	}
	b := make([]byte, 0, len(v)+2)
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"'), nil
}

func (s *Sym) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = S(v)
	return nil
}

// IsZero lets omitempty-style checks and omitzero drop empty symbols.
func (s Sym) IsZero() bool { return s == (Sym{}) }

// Symbols of the status and identity values, interned once.
var (
	symNew       = S(StatusNew)
	symUnknown   = S(StatusUnknown)
	symStrong    = S(IdentityStrong)
	symWeak      = S(IdentityWeak)
	symAmbiguous = S(IdentityAmbiguous)
)
