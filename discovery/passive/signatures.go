package passive

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/reckon-dev/reckon/discovery"
)

// Signatures turn evidence into OS and device-type hints. They live in YAML
// data files, so that users extend or replace them without a rebuild: the
// closed, stale fingerprint database is the first complaint against p0f and
// PRADS. The built-in set is signatures/default.yaml.
//
// A file holds a list under "signatures:"; each entry names the evidence it
// matches (on:), the pattern, and what it concludes:
//
//   - id: linux-syn
//     on: syn              # syn | dhcp | user_agent | text
//     ttl: 64              # syn: initial TTL
//     window: "*"          # syn: a number, "mss*N" or "*"
//     options: "M*,S,T,N,W*"  # syn: option layout; "*" after a letter matches any value
//     os: Linux
//     device_type: ""      # optional
//     confidence: 0.5
//
// dhcp entries match "fingerprint" (option 55 as "1,3,6", a trailing "*"
// matches any rest) and/or "vendor_class" (a regular expression);
// user_agent and text entries match "pattern", a case-insensitive regular
// expression, against an HTTP User-Agent, or a description (LLDP/CDP system
// description, mDNS model, SSDP and HTTP Server strings).
type Signatures struct {
	syns  []synRule
	dhcps []dhcpRule
	uas   []textRule
	texts []textRule
	Files []string // where they came from
}

// SignatureRule is one entry of a signature file.
type SignatureRule struct {
	ID          string  `yaml:"id"`
	On          string  `yaml:"on"`
	TTL         int     `yaml:"ttl"`
	Window      string  `yaml:"window"`
	Options     string  `yaml:"options"`
	Fingerprint string  `yaml:"fingerprint"`
	VendorClass string  `yaml:"vendor_class"`
	Pattern     string  `yaml:"pattern"`
	OS          string  `yaml:"os"`
	DeviceType  string  `yaml:"device_type"`
	Confidence  float64 `yaml:"confidence"`
}

type verdict struct {
	id, os, deviceType string
	confidence         float64
}

type synRule struct {
	verdict
	ttl     uint8
	window  string // "", "*", a number or "mss*N"
	options []string
}

type dhcpRule struct {
	verdict
	fp     string
	prefix bool
	vclass *regexp.Regexp
}

type textRule struct {
	verdict
	re *regexp.Regexp
}

//go:embed signatures/default.yaml
var defaultSignatures []byte

var (
	defaultSigsOnce sync.Once
	defaultSigs     *Signatures
)

// DefaultSignatures returns the built-in signature set.
func DefaultSignatures() *Signatures {
	defaultSigsOnce.Do(func() {
		s := &Signatures{}
		if err := s.add("built-in signatures/default.yaml", defaultSignatures); err != nil {
			panic(err) // a test keeps the embedded file valid
		}
		defaultSigs = s
	})
	return defaultSigs
}

// LoadSignatures reads signature files (a path may be a directory of
// *.yaml files) on top of the built-in set, or instead of it when
// builtin is false. Every error names the file, the entry and the problem.
func LoadSignatures(paths []string, builtin bool) (*Signatures, error) {
	s := &Signatures{}
	if builtin {
		if err := s.add("built-in signatures/default.yaml", defaultSignatures); err != nil {
			return nil, err
		}
	}
	for _, p := range paths {
		files := []string{p}
		if st, err := os.Stat(p); err != nil {
			return nil, err
		} else if st.IsDir() {
			files, _ = filepath.Glob(filepath.Join(p, "*.yaml"))
			if len(files) == 0 {
				return nil, fmt.Errorf("%s: no *.yaml signature files in the directory", p)
			}
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			if err := s.add(f, b); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

func (s *Signatures) add(name string, b []byte) error {
	var doc struct {
		Signatures []SignatureRule `yaml:"signatures"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for i, r := range doc.Signatures {
		if err := s.addRule(r); err != nil {
			id := r.ID
			if id == "" {
				id = "#" + strconv.Itoa(i+1)
			}
			return fmt.Errorf("%s: signature %s: %w", name, id, err)
		}
	}
	s.Files = append(s.Files, name)
	return nil
}

func (s *Signatures) addRule(r SignatureRule) error {
	if r.ID == "" {
		return errors.New("id is required")
	}
	if r.OS == "" && r.DeviceType == "" {
		return errors.New("concludes nothing: give os or device_type")
	}
	if r.Confidence <= 0 || r.Confidence > 1 {
		return fmt.Errorf("confidence %v is not in (0, 1]", r.Confidence)
	}
	v := verdict{id: r.ID, os: r.OS, deviceType: r.DeviceType, confidence: r.Confidence}
	switch r.On {
	case "syn":
		if r.TTL != 32 && r.TTL != 64 && r.TTL != 128 && r.TTL != 255 {
			return fmt.Errorf("ttl %d: want an initial TTL, 32, 64, 128 or 255", r.TTL)
		}
		if w := r.Window; w != "" && w != "*" && !strings.HasPrefix(w, "mss*") {
			if _, err := strconv.ParseUint(w, 10, 16); err != nil {
				return fmt.Errorf("window %q: want a number, mss*N or *", w)
			}
		}
		if r.Options == "" {
			return errors.New("options (the option layout, such as M*,S,T,N,W*) is required")
		}
		s.syns = append(s.syns, synRule{verdict: v, ttl: uint8(r.TTL), window: r.Window, options: strings.Split(r.Options, ",")})
	case "dhcp":
		if r.Fingerprint == "" && r.VendorClass == "" {
			return errors.New("give fingerprint, vendor_class or both")
		}
		dr := dhcpRule{verdict: v, fp: strings.TrimSuffix(r.Fingerprint, "*"), prefix: strings.HasSuffix(r.Fingerprint, "*")}
		if r.VendorClass != "" {
			re, err := regexp.Compile("(?i)" + r.VendorClass)
			if err != nil {
				return fmt.Errorf("vendor_class: %w", err)
			}
			dr.vclass = re
		}
		s.dhcps = append(s.dhcps, dr)
	case "user_agent", "text":
		if r.Pattern == "" {
			return errors.New("pattern is required")
		}
		re, err := regexp.Compile("(?i)" + r.Pattern)
		if err != nil {
			return fmt.Errorf("pattern: %w", err)
		}
		if r.On == "text" {
			s.texts = append(s.texts, textRule{v, re})
		} else {
			s.uas = append(s.uas, textRule{v, re})
		}
	default:
		return fmt.Errorf("on %q: want syn, dhcp, user_agent or text", r.On)
	}
	return nil
}

// conclude adds the hints of the best verdict (the first of the highest
// confidence) to o.
func conclude(o *discovery.Observation, best *verdict, evidence string) {
	if best == nil {
		return
	}
	src := "signature:" + best.id + " (" + evidence + ")"
	if best.os != "" {
		o.Hints = append(o.Hints, discovery.Hint{Kind: "os", Value: best.os, Confidence: best.confidence, Source: src})
	}
	if best.deviceType != "" {
		o.Hints = append(o.Hints, discovery.Hint{Kind: "device_type", Value: best.deviceType, Confidence: best.confidence, Source: src})
	}
}

func better(best *verdict, v *verdict) *verdict {
	if best == nil || v.confidence > best.confidence {
		return v
	}
	return best
}

func (s *Signatures) syn(o *discovery.Observation, sig *synSig) {
	layout := strings.Split(string(sig.layout[:sig.n]), ",")
	var best *verdict
	for i := range s.syns {
		r := &s.syns[i]
		if r.ttl != sig.ittl || !windowMatch(r.window, sig.window, sig.mss) || !layoutMatch(r.options, layout) {
			continue
		}
		best = better(best, &r.verdict)
	}
	conclude(o, best, "tcp-syn")
}

func windowMatch(pat string, w, mss uint16) bool {
	switch {
	case pat == "" || pat == "*":
		return true
	case strings.HasPrefix(pat, "mss*"):
		n, err := strconv.Atoi(pat[4:])
		return err == nil && mss != 0 && int(w) == int(mss)*n
	}
	n, err := strconv.Atoi(pat)
	return err == nil && n == int(w)
}

func layoutMatch(pat, got []string) bool {
	if len(pat) != len(got) {
		return false
	}
	for i, p := range pat {
		if strings.HasSuffix(p, "*") {
			if !strings.HasPrefix(got[i], p[:len(p)-1]) {
				return false
			}
		} else if p != got[i] {
			return false
		}
	}
	return true
}

func (s *Signatures) dhcp(o *discovery.Observation, fp, vclass string) {
	var best *verdict
	for i := range s.dhcps {
		r := &s.dhcps[i]
		if r.fp != "" && (fp == "" || (r.prefix && !strings.HasPrefix(fp, r.fp)) || (!r.prefix && fp != r.fp)) {
			continue
		}
		if r.vclass != nil && (vclass == "" || !r.vclass.MatchString(vclass)) {
			continue
		}
		best = better(best, &r.verdict)
	}
	conclude(o, best, "dhcp")
}

func (s *Signatures) userAgent(o *discovery.Observation, ua string) {
	conclude(o, matchText(s.uas, ua), "http-user-agent")
}

// text matches a free-text description; evidence names where it came from.
func (s *Signatures) text(o *discovery.Observation, text, evidence string) {
	conclude(o, matchText(s.texts, text), evidence)
}

func matchText(rules []textRule, text string) *verdict {
	var best *verdict
	for i := range rules {
		if rules[i].re.MatchString(text) {
			best = better(best, &rules[i].verdict)
		}
	}
	return best
}
