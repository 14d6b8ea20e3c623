// Package discovery holds what every discovery source shares: the
// Observation type and the Source interface. Passive capture lives in
// discovery/passive and nmap sweeps in discovery/active; neither knows the
// inventory that folds their observations into assets.
package discovery
