package inventory

import (
	"encoding/json"
	"sync"
	"sync/atomic"
)

// Sym is an interned string: a 4-byte index into a process-wide table of
// the distinct values (sources, kinds, products, versions, statuses repeat
// across a million devices). It holds no pointer, so records made of Syms
// and Stamps are never scanned by the garbage collector: at a million
// assets, collection pauses were the API's whole latency tail. In JSON it
// is a plain string. The table only grows; its size is the number of
// distinct values ever seen.
type Sym struct{ id uint32 }

type symTable struct {
	mu   sync.Mutex
	ids  map[string]uint32
	vals atomic.Pointer[[]string] // index 0 is ""; entries are never changed
}

// symtab is initialised before the package's other variables use it.
var symtab = newSymTable()

func newSymTable() *symTable {
	t := &symTable{ids: map[string]uint32{}}
	vals := make([]string, 1, 1024)
	t.vals.Store(&vals)
	return t
}

// S interns s.
func S(s string) Sym {
	if s == "" {
		return Sym{}
	}
	symtab.mu.Lock()
	defer symtab.mu.Unlock()
	if id, ok := symtab.ids[s]; ok {
		return Sym{id}
	}
	vals := *symtab.vals.Load()
	// Appending writes past every published length, so readers of an older
	// slice never see the write.
	vals = append(vals, s)
	id := uint32(len(vals) - 1)
	symtab.ids[s] = id
	symtab.vals.Store(&vals)
	return Sym{id}
}

// String returns the value ("" for the zero Sym).
func (s Sym) String() string {
	if s.id == 0 {
		return ""
	}
	return (*symtab.vals.Load())[s.id]
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

// IsZero lets omitzero drop empty symbols.
func (s Sym) IsZero() bool { return s.id == 0 }

// Symbols of the status and identity values, interned once.
var (
	symNew       = S(StatusNew)
	symUnknown   = S(StatusUnknown)
	symStrong    = S(IdentityStrong)
	symWeak      = S(IdentityWeak)
	symAmbiguous = S(IdentityAmbiguous)
)
