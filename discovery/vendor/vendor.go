// Package vendor names the maker of a network interface from its MAC
// address, by the IEEE registry of organisationally unique identifiers. A
// compact table built from Debian's ieee-data (public domain IEEE data) is
// embedded; a newer oui.csv can be loaded at run time.
package vendor

//go:generate go run ./gen /usr/share/ieee-data/oui.csv oui.tsv.gz

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

//go:embed oui.tsv.gz
var embedded []byte

// Table maps 24-bit OUIs to organisation names.
type Table struct {
	names map[uint32]string
}

var (
	defaultOnce  sync.Once
	defaultTable *Table
)

// Default is the embedded table.
func Default() *Table {
	defaultOnce.Do(func() {
		t, err := readTSV(bytes.NewReader(embedded))
		if err != nil {
			panic("vendor: embedded table: " + err.Error())
		}
		defaultTable = t
	})
	return defaultTable
}

func readTSV(r io.Reader) (*Table, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	t := &Table{names: make(map[uint32]string, 40000)}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		k, name, ok := strings.Cut(sc.Text(), "\t")
		v, err := strconv.ParseUint(k, 16, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("bad line %q", sc.Text())
		}
		t.names[uint32(v)] = name
	}
	return t, sc.Err()
}

// ParseCSV reads the IEEE MA-L registry CSV (Registry, Assignment,
// Organization Name, Organization Address) into OUI -> short name.
func ParseCSV(r io.Reader) (map[string]string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	out := map[string]string{}
	first := true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if first {
			first = false
			if len(rec) > 1 && strings.EqualFold(rec[1], "Assignment") {
				continue
			}
		}
		if len(rec) < 3 || len(rec[1]) != 6 {
			continue
		}
		out[strings.ToUpper(rec[1])] = strings.TrimSpace(rec[2])
	}
	if len(out) == 0 {
		return nil, errors.New("no OUI assignments found")
	}
	return out, nil
}

// Load reads a newer registry file (oui.csv from ieee-data or the IEEE site).
func Load(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := ParseCSV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t := &Table{names: make(map[uint32]string, len(m))}
	for k, v := range m {
		n, err := strconv.ParseUint(k, 16, 32)
		if err == nil {
			t.names[uint32(n)] = v
		}
	}
	return t, nil
}

// Len is how many OUIs the table knows.
func (t *Table) Len() int { return len(t.names) }

// Lookup names the maker of a MAC's OUI ("" when unknown, or for a locally
// administered address, which names no maker).
func (t *Table) Lookup(mac [6]byte) string {
	if mac[0]&0x02 != 0 {
		return ""
	}
	return t.names[uint32(mac[0])<<16|uint32(mac[1])<<8|uint32(mac[2])]
}
