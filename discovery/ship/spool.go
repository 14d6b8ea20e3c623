package ship

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reckon-dev/reckon/discovery"
)

// Defaults for Options left zero.
const (
	DefaultMaxBytes       = 256 << 20
	DefaultBatchSize      = 1000
	DefaultFlushInterval  = time.Second
	DefaultRequestTimeout = 30 * time.Second
	DefaultGrace          = 5 * time.Second
)

const (
	openExt    = ".open"
	sealedExt  = ".jsonl"
	badExt     = ".bad"
	problemExt = ".problem.json"
	rejectDir  = "rejected"
	// maxSegmentBytes seals a segment early when its observations are big,
	// well under the server's default 16 MiB body limit.
	maxSegmentBytes = 4 << 20
)

var (
	// ErrClosed is returned by Add and Run once the spooler is closed.
	ErrClosed = errors.New("ship: spooler closed")
	// ErrLocked is returned by Open when another process holds the spool.
	ErrLocked = errors.New("spool in use by another process")
)

// Options configure a Spooler. Dir, Server and Token are required.
type Options struct {
	// Dir is the spool directory, created if missing (mode 0700).
	Dir string
	// MaxBytes bounds the spool's segments on disk (default 256 MiB); past
	// it the oldest sealed segments are dropped. The segment being written
	// and one being posted may exceed it by their size, so it should hold
	// many segments. rejected/ is bounded apart, to MaxBytes/16 (at least
	// 1 MiB).
	MaxBytes int64
	// BatchSize is the most observations per segment, hence per POST
	// (default 1000). A server answering 413 gets halves.
	BatchSize int
	// FlushInterval seals a segment this long after its first observation
	// (default 1 s): the most an observation waits before it is shipped.
	FlushInterval time.Duration
	// Server is the central server's base URL (https://reckon.example:8080).
	Server string
	// Token is an operator bearer token (see LoadToken).
	Token string
	// Sensor names the sensor in batch ids and segment names (default "sensor").
	Sensor string
	// HTTPClient posts the batches (default: a client of its own). Requests
	// are bounded by RequestTimeout whatever its Timeout says.
	HTTPClient *http.Client
	// RequestTimeout bounds one POST (default 30 s).
	RequestTimeout time.Duration
	// Grace bounds the last flush Run makes when its context ends (default 5 s).
	Grace time.Duration
	// Logger receives warnings and errors; nil logs nothing.
	Logger *slog.Logger
}

// Stats are the spooler's counters since Open, and its state now.
type Stats struct {
	// Spooled: observations added.
	Spooled int64
	// BatchesShipped and Shipped: batches and observations the server
	// acknowledged (2xx). A batch the server had already taken counts too,
	// and also in Duplicates.
	BatchesShipped int64
	Shipped        int64
	Duplicates     int64
	// Bytes on disk in segments (written or sealed, not rejected/).
	Bytes int64
	// Pending: sealed segments waiting to be shipped.
	Pending int
	// Dropped: observations deleted unsent because the spool was full.
	Dropped int64
	// Rejected: observations the server refused as invalid (400), kept in
	// rejected/.
	Rejected int64
	// Corrupt: segment lines that could not be read (torn by a crash or
	// damaged), discarded.
	Corrupt int64
	// LastError is the last shipping failure, at LastErrorTime.
	LastError     string
	LastErrorTime time.Time
	// LastSuccess is when the server last acknowledged a batch.
	LastSuccess time.Time
}

// segment is a sealed segment file waiting in the queue.
type segment struct {
	id    string
	path  string
	nanos int64 // from the id: the queue order
	size  int64
	lines int64 // observations not yet resolved (shipped or rejected)
	busy  bool  // being posted: not to be dropped
	// parts are the batches still to send once the segment was read;
	// several after a 413.
	parts []part
	bad   int // unreadable lines found when read
}

// part is a batch: a segment or, after 413s, a piece of one.
type part struct {
	id    string
	lines [][]byte
}

// openSeg is the segment being written.
type openSeg struct {
	id     string
	nanos  int64
	f      *os.File
	w      *bufio.Writer
	opened time.Time
	count  int
	size   int64
	err    error // a failed write: the file is left for recovery
}

// retryPolicy says how long to wait between attempts.
type retryPolicy struct {
	base, max time.Duration // exponential backoff on transient failures
	slow      time.Duration // a rejected token or an unexpected answer
	maxAfter  time.Duration // cap on a server's Retry-After
}

// Spooler is the spool and its shipper. Add is safe for concurrent use.
type Spooler struct {
	opts     Options
	endpoint string
	client   *http.Client
	log      *slog.Logger
	retry    retryPolicy
	sensor   string // sanitised for file names
	lock     *os.File

	// wmu guards the segment being written and the ones handed to the
	// sealer, and closed.
	wmu       sync.Mutex
	cur       *openSeg
	toSeal    []*openSeg
	closed    bool
	lastNanos int64

	sealMu sync.Mutex // one sealer at a time keeps segments in order

	// qmu guards the queue of sealed segments and the drop log.
	qmu        sync.Mutex
	queue      []*segment
	dropUnlog  int64 // dropped observations not yet logged
	dropSegs   int
	dropLogged time.Time

	sealKick chan struct{}
	shipKick chan struct{}
	done     chan struct{}
	sealerWG sync.WaitGroup
	runWG    sync.WaitGroup
	running  atomic.Bool
	close    sync.Once

	bytes                           atomic.Int64
	spooled, batches, shipped, dups atomic.Int64
	dropped, rejected, corrupt      atomic.Int64
	lastSuccess                     atomic.Int64 // unix nanos
	errMu                           sync.Mutex
	lastErr                         string
	lastErrAt                       time.Time
}

// Open opens the spool in opts.Dir, recovers what a previous run left
// (sealing a segment cut short by a crash, discarding a torn last line) and
// starts sealing. Call Run to ship and Close when done.
func Open(opts Options) (*Spooler, error) {
	if opts.Dir == "" {
		return nil, errors.New("ship: spool directory required")
	}
	if opts.Token == "" {
		return nil, errors.New("ship: token required")
	}
	endpoint, err := observationsURL(opts.Server)
	if err != nil {
		return nil, err
	}
	opts.MaxBytes = cmp.Or(opts.MaxBytes, DefaultMaxBytes)
	opts.BatchSize = cmp.Or(opts.BatchSize, DefaultBatchSize)
	opts.FlushInterval = cmp.Or(opts.FlushInterval, DefaultFlushInterval)
	opts.RequestTimeout = cmp.Or(opts.RequestTimeout, DefaultRequestTimeout)
	opts.Grace = cmp.Or(opts.Grace, DefaultGrace)
	if opts.MaxBytes < 0 || opts.BatchSize < 0 || opts.FlushInterval < 0 || opts.RequestTimeout < 0 || opts.Grace < 0 {
		return nil, errors.New("ship: MaxBytes, BatchSize, FlushInterval, RequestTimeout and Grace must not be negative")
	}
	s := &Spooler{
		opts:     opts,
		endpoint: endpoint,
		client:   opts.HTTPClient,
		log:      opts.Logger,
		retry:    retryPolicy{base: 500 * time.Millisecond, max: 30 * time.Second, slow: time.Minute, maxAfter: 10 * time.Minute},
		sensor:   sanitize(opts.Sensor),
		sealKick: make(chan struct{}, 1),
		shipKick: make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if s.client == nil {
		s.client = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirected POST would come back as a GET: say so instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, rejectDir), 0o700); err != nil {
		return nil, fmt.Errorf("spool %s: %w", opts.Dir, err)
	}
	if s.lock, err = lockDir(opts.Dir); err != nil {
		return nil, err
	}
	if err := s.recover(); err != nil {
		unlockDir(s.lock)
		return nil, err
	}
	s.enforceBound()
	s.sealerWG.Add(1)
	go s.sealer()
	return s, nil
}

// observationsURL is the ingest endpoint under a server's base URL.
func observationsURL(server string) (string, error) {
	if server == "" {
		return "", errors.New("ship: server URL required")
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("ship: server %q: want a URL like https://reckon.example:8080", server)
	}
	u.RawQuery, u.Fragment = "", ""
	return u.JoinPath("api/v1/observations").String(), nil
}

// redacted is a URL fit for the log: a password in it masked.
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// sanitize makes a sensor name safe in a file name and a batch id: letters,
// digits, dot and underscore (a dash separates the id's parts).
func sanitize(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	if len(b) == 0 || b[0] == '.' {
		return "sensor" + string(b)
	}
	return string(b)
}

// idNanos reads the time out of a batch id, ok false for a name not made here.
func idNanos(id string) (int64, bool) {
	parts := strings.Split(id, "-")
	if len(parts) < 3 {
		return 0, false
	}
	n, err := strconv.ParseInt(parts[len(parts)-2], 10, 64)
	return n, err == nil
}

// recover rebuilds the queue from the directory.
func (s *Spooler) recover() error {
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("spool %s: %w", s.opts.Dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir():
			continue
		case strings.HasSuffix(name, openExt):
			if err := s.recoverOpen(name); err != nil {
				s.log.Error("spool: cannot recover an unsealed segment; left as it is", "file", name, "err", err)
				continue
			}
			name = strings.TrimSuffix(name, openExt) + sealedExt
		case !strings.HasSuffix(name, sealedExt):
			continue
		}
		path := filepath.Join(s.opts.Dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			s.log.Error("spool: cannot read a segment", "file", path, "err", err)
			s.quarantine(path, strings.TrimSuffix(name, sealedExt))
			continue
		}
		id := strings.TrimSuffix(name, sealedExt)
		seg := &segment{id: id, path: path, size: int64(len(data)), lines: int64(bytes.Count(data, []byte{'\n'}))}
		var ok bool
		if seg.nanos, ok = idNanos(id); !ok {
			if fi, err := e.Info(); err == nil {
				seg.nanos = fi.ModTime().UnixNano()
			}
		}
		s.lastNanos = max(s.lastNanos, seg.nanos)
		s.queue = append(s.queue, seg)
		s.bytes.Add(seg.size)
	}
	slices.SortFunc(s.queue, func(a, b *segment) int {
		return cmp.Or(cmp.Compare(a.nanos, b.nanos), strings.Compare(a.id, b.id))
	})
	if n := len(s.queue); n > 0 {
		s.log.Info("spool: segments from a previous run will be shipped", "segments", n, "bytes", s.bytes.Load())
	}
	return nil
}

// recoverOpen seals a segment a crash left open: its whole lines are kept,
// a torn last line is discarded and counted.
func (s *Spooler) recoverOpen(name string) error {
	path := filepath.Join(s.opts.Dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	whole := bytes.LastIndexByte(data, '\n') + 1
	if whole < len(data) {
		s.corrupt.Add(1)
		s.log.Warn("spool: discarded a torn last line of a segment cut short by a crash", "file", path, "bytes", len(data)-whole)
	}
	if whole == 0 {
		return os.Remove(path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(int64(whole))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(path, strings.TrimSuffix(path, openExt)+sealedExt); err != nil {
		return err
	}
	return syncDir(s.opts.Dir)
}

// Add appends an observation to the spool. It never waits for the network;
// it fails only when the spool cannot be written (or after Close). Callers
// should pass normalised observations (discovery.Observation.Normalize): the
// server refuses a batch holding an invalid one.
func (s *Spooler) Add(o discovery.Observation) error {
	line, err := json.Marshal(&o)
	if err != nil {
		return fmt.Errorf("ship: encoding an observation: %w", err)
	}
	line = append(line, '\n')
	s.wmu.Lock()
	if s.closed {
		s.wmu.Unlock()
		return ErrClosed
	}
	if s.cur == nil {
		if err := s.openSegment(); err != nil {
			s.wmu.Unlock()
			return err
		}
	}
	cur := s.cur
	if _, err := cur.w.Write(line); err != nil {
		// The file holds what was written before; it is sealed from the
		// whole lines on the next start.
		cur.err = err
		s.cur = nil
		s.toSeal = append(s.toSeal, cur)
		s.wmu.Unlock()
		kick(s.sealKick)
		return fmt.Errorf("ship: writing to the spool: %w", err)
	}
	cur.count++
	cur.size += int64(len(line))
	s.bytes.Add(int64(len(line)))
	s.spooled.Add(1)
	full := cur.count >= s.opts.BatchSize || cur.size >= maxSegmentBytes
	if full {
		s.detachLocked()
	}
	over := s.bytes.Load() > s.opts.MaxBytes
	s.wmu.Unlock()
	if full {
		kick(s.sealKick)
	}
	if over {
		s.enforceBound()
	}
	return nil
}

// openSegment starts a new segment; wmu is held.
func (s *Spooler) openSegment() error {
	now := time.Now()
	n := max(now.UnixNano(), s.lastNanos+1)
	s.lastNanos = n
	id := fmt.Sprintf("%s-%019d-%08x", s.sensor, n, rand.Uint32())
	f, err := os.OpenFile(filepath.Join(s.opts.Dir, id+openExt), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("ship: opening a spool segment: %w", err)
	}
	s.cur = &openSeg{id: id, nanos: n, f: f, w: bufio.NewWriterSize(f, 64<<10), opened: now}
	return nil
}

// detachLocked hands the current segment to the sealer; wmu is held. The
// buffered lines are written now so the sealer never touches the writer.
func (s *Spooler) detachLocked() {
	cur := s.cur
	if cur == nil {
		return
	}
	s.cur = nil
	if err := cur.w.Flush(); err != nil {
		cur.err = err
	}
	s.toSeal = append(s.toSeal, cur)
}

// drainSeals seals the detached segments in order: fsync, rename to .jsonl,
// queue for shipping.
func (s *Spooler) drainSeals() {
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	sealed := false
	for {
		s.wmu.Lock()
		if len(s.toSeal) == 0 {
			s.wmu.Unlock()
			break
		}
		o := s.toSeal[0]
		s.toSeal = s.toSeal[1:]
		s.wmu.Unlock()
		if seg := s.seal(o); seg != nil {
			s.qmu.Lock()
			s.queue = append(s.queue, seg)
			s.qmu.Unlock()
			sealed = true
		}
	}
	if sealed {
		if err := syncDir(s.opts.Dir); err != nil {
			s.log.Warn("spool: syncing the directory", "err", err)
		}
		kick(s.shipKick)
	}
	if s.bytes.Load() > s.opts.MaxBytes {
		s.enforceBound()
	}
}

// seal makes a detached segment durable and returns it as a queue entry,
// nil when it cannot be sealed now (it stays .open and is recovered on the
// next start).
func (s *Spooler) seal(o *openSeg) *segment {
	openPath := filepath.Join(s.opts.Dir, o.id+openExt)
	err := o.err
	if err == nil {
		err = o.f.Sync()
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	path := filepath.Join(s.opts.Dir, o.id+sealedExt)
	if err == nil {
		err = os.Rename(openPath, path)
	}
	if err != nil {
		s.bytes.Add(-o.size)
		s.log.Error("spool: cannot seal a segment; it is left for the next start", "file", openPath, "observations", o.count, "err", err)
		return nil
	}
	return &segment{id: o.id, path: path, nanos: o.nanos, size: o.size, lines: int64(o.count)}
}

// sealer seals segments handed over by Add and those past FlushInterval.
func (s *Spooler) sealer() {
	defer s.sealerWG.Done()
	tick := time.NewTicker(max(s.opts.FlushInterval/4, 5*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.sealKick:
		case <-tick.C:
			s.wmu.Lock()
			if s.cur != nil && time.Since(s.cur.opened) >= s.opts.FlushInterval {
				s.detachLocked()
			}
			s.wmu.Unlock()
			s.logDrops(false)
		}
		s.drainSeals()
	}
}

// Seal seals the segment being written now, so it can be shipped.
func (s *Spooler) Seal() {
	s.wmu.Lock()
	s.detachLocked()
	s.wmu.Unlock()
	s.drainSeals()
}

// enforceBound drops the oldest sealed segments, skipping one being posted,
// until the spool fits in MaxBytes.
func (s *Spooler) enforceBound() {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	for i := 0; i < len(s.queue) && s.bytes.Load() > s.opts.MaxBytes; {
		seg := s.queue[i]
		if seg.busy {
			i++
			continue
		}
		s.queue = slices.Delete(s.queue, i, i+1)
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error("spool: cannot delete a dropped segment", "file", seg.path, "err", err)
		}
		s.bytes.Add(-seg.size)
		s.dropped.Add(seg.lines)
		s.dropUnlog += seg.lines
		s.dropSegs++
	}
	s.logDropsLocked(false)
}

func (s *Spooler) logDrops(final bool) {
	s.qmu.Lock()
	s.logDropsLocked(final)
	s.qmu.Unlock()
}

// logDropsLocked warns of dropped observations: at once, then at most every
// 10 s with the sum, so a long outage does not flood the log.
func (s *Spooler) logDropsLocked(final bool) {
	if s.dropSegs == 0 || !final && time.Since(s.dropLogged) < 10*time.Second {
		return
	}
	s.log.Warn("spool full: dropped the oldest observations unsent; the central server has been unreachable too long or the spool is too small",
		"observations_lost", s.dropUnlog, "segments", s.dropSegs, "max_bytes", s.opts.MaxBytes, "dropped_total", s.dropped.Load())
	s.dropUnlog, s.dropSegs, s.dropLogged = 0, 0, time.Now()
}

// Stats returns the counters and the state now.
func (s *Spooler) Stats() Stats {
	st := Stats{
		Spooled:        s.spooled.Load(),
		BatchesShipped: s.batches.Load(),
		Shipped:        s.shipped.Load(),
		Duplicates:     s.dups.Load(),
		Bytes:          s.bytes.Load(),
		Dropped:        s.dropped.Load(),
		Rejected:       s.rejected.Load(),
		Corrupt:        s.corrupt.Load(),
	}
	if n := s.lastSuccess.Load(); n != 0 {
		st.LastSuccess = time.Unix(0, n)
	}
	s.qmu.Lock()
	st.Pending = len(s.queue)
	s.qmu.Unlock()
	s.errMu.Lock()
	st.LastError, st.LastErrorTime = s.lastErr, s.lastErrAt
	s.errMu.Unlock()
	return st
}

// Close seals the segment being written, stops Run and releases the spool.
// Unsent segments stay on disk for the next Open. It is safe to call twice.
func (s *Spooler) Close() error {
	s.close.Do(func() {
		s.wmu.Lock()
		s.closed = true
		s.detachLocked()
		s.wmu.Unlock()
		close(s.done)
		s.sealerWG.Wait()
		s.runWG.Wait()
		s.drainSeals()
		s.logDrops(true)
		unlockDir(s.lock)
	})
	return nil
}

// quarantine moves an unreadable segment to rejected/<id>.bad, or out of the
// queue at least, so it cannot stop the spool.
func (s *Spooler) quarantine(path, id string) {
	dst := filepath.Join(s.opts.Dir, rejectDir, id+badExt)
	if err := os.Rename(path, dst); err != nil {
		s.log.Error("spool: cannot quarantine a damaged segment; skipping it", "file", path, "err", err)
		return
	}
	s.log.Warn("spool: quarantined a damaged segment", "file", dst)
	s.pruneRejected()
}

// pruneRejected keeps rejected/ under a sixteenth of MaxBytes (at least
// 1 MiB), deleting the oldest files first.
func (s *Spooler) pruneRejected() {
	limit := max(s.opts.MaxBytes/16, 1<<20)
	dir := filepath.Join(s.opts.Dir, rejectDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type file struct {
		name string
		size int64
		mod  time.Time
	}
	var files []file
	var total int64
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			files = append(files, file{e.Name(), fi.Size(), fi.ModTime()})
			total += fi.Size()
		}
	}
	slices.SortFunc(files, func(a, b file) int { return cmp.Or(a.mod.Compare(b.mod), strings.Compare(a.name, b.name)) })
	for _, f := range files {
		if total <= limit {
			break
		}
		if os.Remove(filepath.Join(dir, f.name)) == nil {
			total -= f.size
		}
	}
}

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// kick wakes a goroutine waiting on a capacity-1 channel without blocking.
func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// splitLines returns a segment's readable lines (each a JSON object) and
// how many were not.
func splitLines(data []byte) (good [][]byte, bad int) {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if line[0] == '{' && json.Valid(line) {
			good = append(good, line)
		} else {
			bad++
		}
	}
	return good, bad
}
