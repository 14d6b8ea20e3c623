package config

import (
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var durationType = reflect.TypeFor[time.Duration]()

func typeOf(v any) reflect.Type {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// yamlName is the key a struct field has in YAML, or "" when it has none.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

// unknownKeys lists the keys of node that t has no field for, each with its
// full dotted path and line, walking into nested mappings and sequences.
func unknownKeys(node *yaml.Node, t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	switch {
	case node.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			if name := yamlName(t.Field(i)); name != "" {
				fields[name] = t.Field(i).Type
			}
		}
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			ft, ok := fields[k.Value]
			if !ok {
				out = append(out, fmt.Sprintf("line %d: unknown key %q", k.Line, path))
				continue
			}
			out = append(out, unknownKeys(v, ft, path)...)
		}
	case node.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, item := range node.Content {
			out = append(out, unknownKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", prefix, i))...)
		}
	}
	return out
}

// EnvName is the environment variable that overrides the key at path.
func EnvName(path string) string {
	return "RECKON_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// applyEnv overrides every key whose RECKON_ variable is set in env. Scalars
// take the plain value; lists and objects take a YAML (or JSON) document.
func applyEnv(cfg *Config, env []string) error {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "RECKON_") {
			vars[k] = v
		}
	}
	if len(vars) == 0 {
		return nil
	}
	var errs []string
	walkLeaves(reflect.ValueOf(cfg).Elem(), "", func(path string, v reflect.Value) {
		name := EnvName(path)
		raw, ok := vars[name]
		if !ok {
			return
		}
		if err := setFromString(v, raw); err != nil {
			errs = append(errs, fmt.Sprintf("%s (%s): %v", name, path, err))
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

// walkLeaves calls fn for every key below v that is not a nested struct:
// scalars, durations, lists and maps.
func walkLeaves(v reflect.Value, prefix string, fn func(path string, v reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		name := yamlName(t.Field(i))
		if name == "" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != durationType {
			walkLeaves(fv, path, fn)
			continue
		}
		fn(path, fv)
	}
}

func setFromString(v reflect.Value, raw string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("%q is not a duration like 30s or 5m", raw)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
		if err != nil || v.OverflowInt(n) {
			return fmt.Errorf("%q is not a whole number", raw)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(raw), 10, 64)
		if err != nil || v.OverflowUint(n) {
			return fmt.Errorf("%q is not a non-negative whole number", raw)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		v.SetFloat(f)
	default:
		// Lists and objects: a YAML document (JSON is YAML), decoded strictly.
		fresh := reflect.New(v.Type())
		if err := decodeStrict([]byte(raw), fresh.Interface()); err != nil {
			return err
		}
		v.Set(fresh.Elem())
	}
	return nil
}

// maskSecrets blanks every field tagged secret:"value" and strips the
// password from every field tagged secret:"url".
func maskSecrets(cfg *Config) {
	var mask func(v reflect.Value)
	mask = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f, fv := t.Field(i), v.Field(i)
			if !f.IsExported() {
				continue
			}
			switch f.Tag.Get("secret") {
			case "value":
				if fv.Kind() == reflect.String && fv.String() != "" {
					fv.SetString("********")
				}
				continue
			case "url":
				if fv.Kind() == reflect.String {
					fv.SetString(RedactURL(fv.String()))
				}
				continue
			}
			switch fv.Kind() {
			case reflect.Struct:
				if fv.Type() != durationType {
					mask(fv)
				}
			case reflect.Slice:
				if fv.Type().Elem().Kind() == reflect.Struct {
					fresh := reflect.MakeSlice(fv.Type(), fv.Len(), fv.Len())
					reflect.Copy(fresh, fv)
					for j := range fresh.Len() {
						mask(fresh.Index(j))
					}
					fv.Set(fresh)
				}
			}
		}
	}
	mask(reflect.ValueOf(cfg).Elem())
}

// RedactURL hides the password of a URL (and a password= query parameter).
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "********"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Keys lists every key of cfg's configuration, dotted (database.url).
func Keys(cfg *Config) []string {
	var out []string
	walkLeaves(reflect.ValueOf(cfg).Elem(), "", func(path string, _ reflect.Value) { out = append(out, path) })
	return out
}
