package assess

// Status is a check's outcome on one host.
type Status string

// The outcomes of a check.
const (
	Pass          Status = "pass"
	Fail          Status = "fail"
	Error         Status = "error"          // the expression failed to run (cost limit, bad value)
	NotApplicable Status = "not_applicable" // `applies` was false
)

// Severities, lowest first.
var Severities = []string{"info", "low", "medium", "high", "critical"}

// Result is one check's outcome on one host.
type Result struct {
	CheckID  string `json:"check_id"`
	Title    string `json:"title"`
	Severity string `json:"severity"`
	Status   Status `json:"status"`
	// Evidence shows why: the value of the check's `evidence` expression
	// when it has one (the offending ports, versions, ciphers ...), else the
	// facts the check read. Error carries the evaluation error.
	Evidence any    `json:"evidence,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Evidence is raw material an assessment keeps: the nmap XML of each run,
// a probe's transcript.
type Evidence struct {
	Kind string `json:"kind"` // nmap-xml, probe
	Name string `json:"name"` // "nmap -sV", "tls 127.0.0.1:443"
	Body string `json:"body"`
}
