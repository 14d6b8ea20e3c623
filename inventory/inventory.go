package inventory

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/inventory/store"
)

// ServiceOptions configure the stored inventory.
type ServiceOptions struct {
	Store    *store.Store
	Identity Options
	// FlushInterval is how long changes may wait in memory to be coalesced
	// with others before they are written (ingest returns once they are).
	FlushInterval time.Duration
	// RawRetention is how long raw observation batches are kept.
	RawRetention time.Duration
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

// Inventory is the stored inventory: the identity engine in memory over the
// store. Accepted batches are written first (the write-ahead log), folded
// into assets in memory, and the changed assets written in coalesced
// batches; batches not yet folded into stored assets are replayed on start.
type Inventory struct {
	opts   ServiceOptions
	logger *slog.Logger
	q      sqlStore

	mu      sync.Mutex // guards engine, lastSeq
	engine  *Engine
	lastSeq int64 // newest batch applied to the engine

	writeMu    sync.Mutex // one flush at a time, so writes land in order
	flushMu    sync.Mutex // guards flushedSeq, flushed, flushErr
	flushedSeq int64
	flushed    chan struct{} // closed and replaced after each flush attempt
	flushErr   error

	// rowsWritten and flushes count asset rows written and write transactions.
	rowsWritten, flushes int64
	lastFlush            time.Duration

	// onEvents, when set, is told of the events of each write once it is
	// stored (SetOnEvents).
	onEvents atomic.Pointer[func([]Event)]

	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	started bool
	metrics *invMetrics
}

// ErrMerged is returned for an asset that was merged into another; Into says which.
type ErrMerged struct{ Into string }

func (e *ErrMerged) Error() string { return "asset was merged into " + e.Into }

// ErrUnavailable means the store could not take the write; nothing was accepted.
var ErrUnavailable = errors.New("inventory store unavailable")

// Open loads the stored assets into memory and replays the batches not yet
// folded into them.
func Open(ctx context.Context, opts ServiceOptions) (*Inventory, error) {
	if opts.Store == nil {
		return nil, errors.New("inventory: no store")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 200 * time.Millisecond
	}
	if opts.RawRetention <= 0 {
		opts.RawRetention = 30 * 24 * time.Hour
	}
	inv := &Inventory{
		opts: opts, logger: opts.Logger, q: sqlStore{opts.Store}, engine: NewEngine(opts.Identity),
		flushed: make(chan struct{}), kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		metrics: newInvMetrics(opts.Registerer),
	}
	started := time.Now()
	err := inv.q.loadAssets(ctx, func(a *Asset) {
		a.writtenIPs = ipsHash(a.Summary().IPs)
		inv.engine.Load(a)
	})
	if err != nil {
		return nil, fmt.Errorf("loading assets: %w", err)
	}
	if err := inv.q.loadMerges(ctx, inv.engine.LoadMerged); err != nil {
		return nil, fmt.Errorf("loading merges: %w", err)
	}
	inv.engine.TakeEvents()
	replayed := 0
	var after int64
	for {
		batches, err := inv.q.pendingBatches(ctx, after, 100)
		if err != nil {
			return nil, fmt.Errorf("reading pending batches: %w", err)
		}
		for _, b := range batches {
			var obs []discovery.Observation
			if err := json.Unmarshal([]byte(b.Body), &obs); err != nil {
				return nil, fmt.Errorf("pending batch %d: %w", b.Seq, err)
			}
			for i := range obs {
				inv.engine.Apply(&obs[i])
			}
			inv.lastSeq, after = b.Seq, b.Seq
			replayed++
		}
		if len(batches) < 100 {
			break
		}
	}
	if replayed > 0 {
		if err := inv.flushOnce(ctx); err != nil {
			return nil, fmt.Errorf("writing replayed batches: %w", err)
		}
	}
	inv.metrics.assets.Set(float64(inv.engine.Len()))
	inv.logger.Info("inventory loaded", "assets", inv.engine.Len(), "replayed_batches", replayed, "took", time.Since(started).Round(time.Millisecond))
	return inv, nil
}

// Start runs the writer that flushes changes.
func (inv *Inventory) Start(ctx context.Context) {
	inv.started = true
	go inv.flushLoop()
}

// Stop writes what is pending and stops the writer. Safe to call twice.
func (inv *Inventory) Stop(ctx context.Context) error {
	select {
	case <-inv.stop:
		return nil
	default:
	}
	close(inv.stop)
	if inv.started {
		select {
		case <-inv.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return inv.flushOnce(ctx)
}

func (inv *Inventory) flushLoop() {
	defer close(inv.done)
	backoff := time.Duration(0)
	for {
		// Under load, wait at least twice as long as the last write took:
		// the writer stays at most half busy and more changes to the same
		// asset coalesce into one write.
		inv.flushMu.Lock()
		wait := max(inv.opts.FlushInterval, min(2*inv.lastFlush, 30*time.Second))
		inv.flushMu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-inv.stop:
			t.Stop()
			return
		case <-inv.kick:
			t.Stop()
		case <-t.C:
		}
		if backoff > 0 {
			select {
			case <-inv.stop:
				return
			case <-time.After(backoff):
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := inv.flushOnce(ctx)
		cancel()
		if err != nil {
			inv.logger.Warn("inventory write failed; retrying", "err", err)
			backoff = min(max(2*backoff, 250*time.Millisecond), 10*time.Second)
			select {
			case inv.kick <- struct{}{}:
			default:
			}
			continue
		}
		backoff = 0
	}
}

// flushOnce writes the engine's changes, if any, and wakes the waiters.
func (inv *Inventory) flushOnce(ctx context.Context) error {
	inv.writeMu.Lock()
	defer inv.writeMu.Unlock()
	inv.mu.Lock()
	dirty := inv.engine.TakeDirty()
	events := inv.engine.TakeEvents()
	merges := inv.engine.TakeMerges()
	seq := inv.lastSeq
	set := &flushSet{events: events, merges: merges, upToSeq: seq}
	rows, marshalErr := toRows(dirty)
	for i, row := range rows {
		if row.ID == "" {
			continue
		}
		row.stored = dirty[i].writtenIPs != 0
		set.rows = append(set.rows, row)
		if ipsHash(row.ipKeys) != dirty[i].writtenIPs {
			set.ipsFor = append(set.ipsFor, row)
		}
	}
	for _, m := range merges {
		set.deleted = append(set.deleted, m[0])
	}
	inv.mu.Unlock()
	if marshalErr != nil {
		inv.logger.Error("asset not writable", "err", marshalErr)
	}

	var err error
	started := time.Now()
	if len(set.rows) > 0 || len(set.events) > 0 || len(set.merges) > 0 || seq > inv.flushedSeqNow() {
		err = inv.q.write(ctx, set)
		inv.metrics.flushDuration.Observe(time.Since(started).Seconds())
	}
	inv.mu.Lock()
	if err != nil {
		for _, r := range set.rows {
			inv.engine.MarkDirty(r.ID)
		}
		inv.engine.PutBackEvents(events, merges)
	} else {
		ipsFor := make(map[string]uint64, len(set.ipsFor))
		for _, r := range set.ipsFor {
			ipsFor[r.ID] = ipsHash(r.ipKeys)
		}
		for _, a := range dirty {
			if ips, ok := ipsFor[a.ID.String()]; ok {
				a.writtenIPs = ips
			}
		}
		inv.metrics.assets.Set(float64(inv.engine.Len()))
		inv.metrics.events.Add(float64(len(events)))
	}
	inv.mu.Unlock()

	inv.flushMu.Lock()
	if err == nil && seq > inv.flushedSeq {
		inv.flushedSeq = seq
	}
	if err == nil && len(set.rows) > 0 {
		inv.rowsWritten += int64(len(set.rows))
		inv.flushes++
		inv.lastFlush = time.Since(started)
	}
	inv.flushErr = err
	close(inv.flushed)
	inv.flushed = make(chan struct{})
	inv.flushMu.Unlock()
	if fn := inv.onEvents.Load(); err == nil && fn != nil && len(events) > 0 {
		(*fn)(events)
	}
	return err
}

// SetOnEvents has fn told of the events of every write once they are stored
// (asset created, changed, merged ...), in the writer's goroutine: fn must
// return quickly. The assessment queue uses it to assess new and changed
// hosts at once.
func (inv *Inventory) SetOnEvents(fn func([]Event)) {
	if fn == nil {
		inv.onEvents.Store(nil)
		return
	}
	inv.onEvents.Store(&fn)
}

// Lookup returns asset id's summary from memory; false if there is none
// (or it was merged away).
func (inv *Inventory) Lookup(id string) (Summary, bool) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	a, ok := inv.engine.Get(id)
	if !ok {
		return Summary{}, false
	}
	return a.Summary(), true
}

func (inv *Inventory) flushedSeqNow() int64 {
	inv.flushMu.Lock()
	defer inv.flushMu.Unlock()
	return inv.flushedSeq
}

// waitFlushed waits until batch seq is in the stored assets.
func (inv *Inventory) waitFlushed(ctx context.Context, seq int64) error {
	for {
		inv.flushMu.Lock()
		if inv.flushedSeq >= seq {
			inv.flushMu.Unlock()
			return nil
		}
		ch := inv.flushed
		inv.flushMu.Unlock()
		select {
		case inv.kick <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// IngestResult says what became of a batch.
type IngestResult struct {
	BatchID  string `json:"batch_id"`
	Accepted int    `json:"accepted"`
	// Duplicate: the batch id was seen before; nothing was applied again.
	Duplicate bool `json:"duplicate"`
	// Pending: the batch is stored and will be applied, but the assets were
	// not written yet when the call returned.
	Pending bool `json:"pending"`
}

// Ingest stores a batch of normalised observations and folds it into the
// assets. The same batch id twice is applied once. When it returns without
// error the batch is durable (replayed on start if the assets were not
// written); unless Pending, its assets are written too.
//
// With wait false it returns once the batch is durable and folded into the
// assets in memory; the writer stores the changed assets within the flush
// interval, coalesced with other batches (Pending is true). With wait true
// it returns once the assets are stored too.
func (inv *Inventory) Ingest(ctx context.Context, batchID, by string, obs []discovery.Observation, wait bool) (IngestResult, error) {
	res := IngestResult{BatchID: batchID}
	started := time.Now()
	inv.mu.Lock()
	seq, dup, err := inv.q.insertBatch(ctx, batchID, by, obs)
	if err != nil {
		inv.mu.Unlock()
		return res, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if dup {
		inv.mu.Unlock()
		res.Duplicate = true
		inv.metrics.batches.WithLabelValues("duplicate").Inc()
		return res, nil
	}
	for i := range obs {
		inv.engine.Apply(&obs[i])
	}
	if seq > inv.lastSeq {
		inv.lastSeq = seq
	}
	inv.mu.Unlock()
	res.Accepted = len(obs)
	inv.metrics.batches.WithLabelValues("accepted").Inc()
	inv.metrics.observations.Add(float64(len(obs)))
	if !inv.started {
		if err := inv.flushOnce(ctx); err != nil {
			res.Pending = true
		}
		return res, nil
	}
	if !wait {
		res.Pending = seq > inv.flushedSeqNow()
		inv.metrics.ingestDuration.Observe(time.Since(started).Seconds())
		return res, nil
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := inv.waitFlushed(wctx, seq); err != nil {
		res.Pending = true
	}
	inv.metrics.ingestDuration.Observe(time.Since(started).Seconds())
	return res, nil
}

// Filter selects assets for List.
type Filter struct {
	Status    string
	Q         string // free text over hostnames, IPs, MACs, vendor, OS
	Source    string
	Subnet    netip.Prefix
	SeenSince time.Time
	Limit     int
	Cursor    string
}

// ErrBadCursor is returned for a cursor List did not make.
var ErrBadCursor = errors.New("bad cursor")

// List returns assets matching f, newest last seen first, and the cursor of
// the next page ("" at the end).
func (inv *Inventory) List(ctx context.Context, f Filter) ([]Summary, string, error) {
	raw, next, err := inv.ListRaw(ctx, f)
	if err != nil {
		return nil, "", err
	}
	out := make([]Summary, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return nil, "", fmt.Errorf("stored asset summary: %w", err)
		}
	}
	return out, next, nil
}

// ListRaw is List with each asset's list view as stored JSON, served
// without decoding.
func (inv *Inventory) ListRaw(ctx context.Context, f Filter) ([]json.RawMessage, string, error) {
	var out []json.RawMessage
	next, err := inv.ListEach(ctx, f, func(sum []byte) { out = append(out, slices.Clone(sum)) })
	return out, next, err
}

// ListEach calls fn with each matching asset's list view as stored JSON;
// the bytes are valid only during the call. It returns the next cursor.
func (inv *Inventory) ListEach(ctx context.Context, f Filter, fn func(summary []byte)) (string, error) {
	db := inv.q.db()
	var where []string
	var args []any
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.Q != "" {
		where, args = append(where, "search LIKE ?"), append(args, "%"+escapeLike(strings.ToLower(f.Q))+"%")
	}
	if f.Source != "" {
		where, args = append(where, "sources LIKE ?"), append(args, "% "+escapeLike(f.Source)+" %")
	}
	if !f.SeenSince.IsZero() {
		where, args = append(where, "last_seen >= ?"), append(args, f.SeenSince.UTC())
	}
	if f.Subnet.IsValid() {
		lo, hi := prefixRange(f.Subnet)
		where, args = append(where, "id IN (SELECT asset_id FROM asset_ips WHERE ip_key BETWEEN ? AND ?)"), append(args, lo, hi)
	}
	if f.Cursor != "" {
		t, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return "", err
		}
		where = append(where, "(last_seen < ? OR (last_seen = ? AND id < ?))")
		args = append(args, t, t, id)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	query := "SELECT id, last_seen, summary FROM assets"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY last_seen DESC, id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := db.QueryContext(ctx, db.Rebind(query), args...)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer rows.Close()
	n := 0
	var lastID string
	var lastSeen time.Time
	next := ""
	for rows.Next() {
		var id string
		var seen time.Time
		var sum sql.RawBytes
		if err := rows.Scan(&id, &seen, &sum); err != nil {
			return "", err
		}
		if n == limit {
			next = encodeCursor(lastSeen, lastID)
			break
		}
		fn(sum)
		n++
		lastID, lastSeen = id, seen
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return next, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixNano(), 10) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	ns, id, ok := strings.Cut(string(raw), "|")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", ErrBadCursor
	}
	return time.Unix(0, n).UTC(), id, nil
}

// Get returns the detail view of an asset, with its timeline.
func (inv *Inventory) Get(ctx context.Context, id string) (Detail, error) {
	db := inv.q.db()
	var doc []byte
	err := db.GetContext(ctx, &doc, db.Rebind(`SELECT doc FROM assets WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		var into string
		if err := db.GetContext(ctx, &into, db.Rebind(`SELECT into_id FROM asset_merges WHERE from_id = ?`), id); err == nil {
			return Detail{}, &ErrMerged{Into: into}
		}
		return Detail{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Detail{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var a Asset
	if err := json.Unmarshal(doc, &a); err != nil {
		return Detail{}, fmt.Errorf("stored asset %s: %w", id, err)
	}
	type eventRow struct {
		ID     int64     `db:"id"`
		At     time.Time `db:"at"`
		Kind   string    `db:"kind"`
		Detail string    `db:"detail"`
	}
	var evs []eventRow
	if err := db.SelectContext(ctx, &evs, db.Rebind(`SELECT id, at, kind, detail FROM asset_events WHERE asset_id = ? ORDER BY id DESC LIMIT 500`), id); err != nil {
		return Detail{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	timeline := make([]Event, 0, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		ev := Event{ID: evs[i].ID, AssetID: id, Time: evs[i].At.UTC(), Kind: evs[i].Kind}
		_ = json.Unmarshal([]byte(evs[i].Detail), &ev.Detail)
		timeline = append(timeline, ev)
	}
	return a.Detail(timeline), nil
}

// Merge folds asset other into asset into, recording who did it, and
// returns the merged asset once it is stored.
func (inv *Inventory) Merge(ctx context.Context, into, other, by string) (Summary, error) {
	inv.mu.Lock()
	a, err := inv.engine.Merge(into, other, by, store.Now())
	var s Summary
	if err == nil {
		s = a.Summary()
	}
	inv.mu.Unlock()
	if err != nil {
		return Summary{}, err
	}
	return s, inv.flushOnce(ctx)
}

// Split moves what spec names out of asset id into a new asset, recording
// who did it, and returns both once stored.
func (inv *Inventory) Split(ctx context.Context, id string, spec SplitSpec, by string) (Summary, Summary, error) {
	inv.mu.Lock()
	a, b, err := inv.engine.Split(id, spec, by, store.Now())
	var sa, sb Summary
	if err == nil {
		sa, sb = a.Summary(), b.Summary()
	}
	inv.mu.Unlock()
	if err != nil {
		return Summary{}, Summary{}, err
	}
	return sa, sb, inv.flushOnce(ctx)
}

// Maintain flags assets not seen for the missing window and prunes raw
// batches past their retention; a periodic job calls it.
func (inv *Inventory) Maintain(ctx context.Context, now time.Time) error {
	inv.mu.Lock()
	n := inv.engine.MarkMissing(now)
	inv.mu.Unlock()
	if n > 0 {
		if err := inv.flushOnce(ctx); err != nil {
			return err
		}
	}
	pruned, err := inv.q.pruneBatches(ctx, now.Add(-inv.opts.RawRetention))
	if err != nil {
		return fmt.Errorf("pruning observation batches: %w", err)
	}
	if n > 0 || pruned > 0 {
		inv.logger.Info("inventory maintenance", "marked_missing", n, "pruned_batches", pruned)
	}
	return nil
}

// Len is how many assets are tracked.
func (inv *Inventory) Len() int {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.engine.Len()
}

// ipsHash sums a list of IPs (or their keys) so that a changed list can be
// told from an unchanged one without keeping a copy.
func ipsHash(ips []string) uint64 {
	h := fnv.New64a()
	for _, ip := range ips {
		if k, ok := ipKey(ip); ok {
			ip = k
		}
		h.Write([]byte(ip))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// WriteStats says how many asset rows the writer wrote, in how many
// transactions: with the observation count, how well changes coalesce.
func (inv *Inventory) WriteStats() (rows, flushes int64) {
	inv.flushMu.Lock()
	defer inv.flushMu.Unlock()
	return inv.rowsWritten, inv.flushes
}

// toRows renders assets as rows, on every core: the JSON documents are the
// writer's main CPU cost. A row that fails to render has an empty ID.
func toRows(assets []*Asset) ([]assetRow, error) {
	rows := make([]assetRow, len(assets))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(assets)/500))
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(assets); i += workers {
				row, err := toRow(assets[i])
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				rows[i] = row
			}
		}()
	}
	wg.Wait()
	return rows, firstErr
}
