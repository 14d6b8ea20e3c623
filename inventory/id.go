package inventory

import (
	"fmt"

	"github.com/google/uuid"
)

// ID names an asset: a UUIDv7 (time-ordered), kept as 16 bytes rather than
// a 36-character string, which saves an allocation and a pointer per asset.
// In JSON and the store it is the usual text form.
type ID [16]byte

// NewID returns a fresh, time-ordered id.
func NewID() ID { return ID(uuid.Must(uuid.NewV7())) }

// ParseID reads an id in its text form.
func ParseID(s string) (ID, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("%q is not an asset id", s)
	}
	return ID(u), nil
}

func (id ID) String() string { return uuid.UUID(id).String() }

func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}
