// Package configs holds the configuration files shipped with reckon; the
// baseline policy is built into the binary from here.
package configs

import _ "embed"

// Baseline is configs/policies/baseline.yaml, the policy used when the
// configuration names none.
//
//go:embed policies/baseline.yaml
var Baseline []byte

// BaselineName is the name the built-in baseline is reported under.
const BaselineName = "baseline.yaml (built in)"
