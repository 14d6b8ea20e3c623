package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reckon-dev/reckon/inventory/store"
)

// Options configure a Dispatcher. Zero values take the defaults.
type Options struct {
	Store *store.Store
	Sinks []Sink
	// BatchSize is the most notifications sent to a sink in one Send (default 50).
	BatchSize int
	// BaseDelay is the wait before the first retry (default 5s); it doubles
	// with each attempt up to MaxDelay (default 10m).
	BaseDelay, MaxDelay time.Duration
	// Jitter spreads each delay by ± that fraction of it (default 0.2;
	// negative for none), so that retries after an outage do not arrive together.
	Jitter float64
	// MaxAge is how long a notification is retried before it is given up
	// (default 24h). A receiver's Retry-After that reaches past it gives up too.
	MaxAge time.Duration
	// PollInterval is how often the outbox is read for due retries and for
	// rows other replicas enqueued (default 1s); Enqueue wakes its own
	// Dispatcher at once.
	PollInterval time.Duration
	// SendTimeout bounds one Send (default 1m); a row being sent is leased
	// for that plus 30s, after which it counts as abandoned and is retried.
	SendTimeout time.Duration
	// Retention is how long delivered and failed rows are kept (default 7 days).
	Retention  time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Dispatcher delivers notifications to its sinks through an outbox table
// (notification_outbox), so that they survive restarts and a slow or absent
// receiver never holds up the caller. Enqueue writes one row per
// notification and sink; Run works the rows, one loop per sink, sending due
// rows in batches and retrying with exponential backoff until the sink takes
// them, refuses them for good (ErrPermanent), or MaxAge passes. Delivery is
// at least once: receivers dedupe by Notification.ID.
//
// No transaction is open while a sink sends, so one SQLite connection is
// enough. On PostgreSQL several replicas may share the outbox: rows are
// claimed with FOR UPDATE SKIP LOCKED and leased while in flight.
type Dispatcher struct {
	db      *sqlx.DB
	kind    store.Kind
	sinks   []Sink
	wake    map[string]chan struct{}
	opts    Options
	lease   time.Duration
	logger  *slog.Logger
	metrics *metrics

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// sweepInterval is how often old rows are expired and removed.
const sweepInterval = time.Minute

// NewDispatcher checks opts and builds a Dispatcher; nothing runs until Run or Start.
func NewDispatcher(opts Options) (*Dispatcher, error) {
	if opts.Store == nil {
		return nil, errors.New("notify: no store")
	}
	d := &Dispatcher{db: opts.Store.DB, kind: opts.Store.Kind, wake: map[string]chan struct{}{}}
	for _, s := range opts.Sinks {
		name := s.Name()
		if name == "" {
			return nil, errors.New("notify: a sink has no name")
		}
		if _, dup := d.wake[name]; dup {
			return nil, fmt.Errorf("notify: two sinks are named %q", name)
		}
		d.wake[name] = make(chan struct{}, 1)
		d.sinks = append(d.sinks, s)
	}
	def := func(v *time.Duration, dflt time.Duration) {
		if *v <= 0 {
			*v = dflt
		}
	}
	def(&opts.BaseDelay, 5*time.Second)
	def(&opts.MaxDelay, 10*time.Minute)
	def(&opts.MaxAge, 24*time.Hour)
	def(&opts.PollInterval, time.Second)
	def(&opts.SendTimeout, time.Minute)
	def(&opts.Retention, 7*24*time.Hour)
	opts.MaxDelay = max(opts.MaxDelay, opts.BaseDelay)
	if opts.BatchSize <= 0 {
		opts.BatchSize = 50
	}
	switch {
	case opts.Jitter == 0:
		opts.Jitter = 0.2
	case opts.Jitter < 0:
		opts.Jitter = 0
	case opts.Jitter > 1:
		opts.Jitter = 1
	}
	d.opts = opts
	d.lease = opts.SendTimeout + 30*time.Second
	d.logger = opts.Logger
	if d.logger == nil {
		d.logger = slog.New(slog.DiscardHandler)
	}
	d.logger = d.logger.With("component", "notify")
	d.metrics = newMetrics(opts.Registerer)
	return d, nil
}

// Enqueue records the notifications for every sink and returns without
// waiting for delivery: it costs one short transaction. An empty ID is set
// to a new UUID in n, so the caller sees it; a zero At becomes now.
// Enqueueing an ID again for the same sink is a no-op.
func (d *Dispatcher) Enqueue(ctx context.Context, n []Notification) error {
	if len(n) == 0 || len(d.sinks) == 0 {
		return nil
	}
	now := store.Now()
	const cols = 5
	args := make([]any, 0, len(n)*len(d.sinks)*cols)
	for i := range n {
		if n[i].ID == "" {
			n[i].ID = uuid.NewString()
		}
		if n[i].At.IsZero() {
			n[i].At = now
		}
		body, err := json.Marshal(n[i])
		if err != nil {
			return fmt.Errorf("notify: encoding notification %s: %w", n[i].ID, err)
		}
		for _, s := range d.sinks {
			args = append(args, n[i].ID, s.Name(), string(body), now, now)
		}
	}
	tx, err := d.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("notify: enqueue: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// Rows per statement, well under SQLite's limit on variables.
	const perInsert = 100
	for len(args) > 0 {
		k := min(len(args)/cols, perInsert)
		q := `INSERT INTO notification_outbox (id, sink, body, next_at, created_at) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?), ", k), ", ") +
			` ON CONFLICT (id, sink) DO NOTHING`
		if _, err := tx.ExecContext(ctx, d.db.Rebind(q), args[:k*cols]...); err != nil {
			return fmt.Errorf("notify: enqueue: %w", err)
		}
		args = args[k*cols:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("notify: enqueue: %w", err)
	}
	for _, c := range d.wake {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	return nil
}

// Run delivers until ctx ends, then returns nil. Sends in flight are
// cancelled and their rows handed back for the next Run.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range d.sinks {
		wg.Go(func() { d.sinkLoop(ctx, s) })
	}
	wg.Go(func() { d.sweepLoop(ctx) })
	wg.Wait()
	return nil
}

// Start runs the Dispatcher in the background until Stop or ctx ends.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done != nil {
		return errors.New("notify: dispatcher already started")
	}
	ctx, d.cancel = context.WithCancel(ctx)
	d.done = make(chan struct{})
	go func() {
		defer close(d.done)
		_ = d.Run(ctx)
	}()
	return nil
}

// Stop ends Start's run and waits for it; safe to call twice, or without Start.
func (d *Dispatcher) Stop() {
	d.mu.Lock()
	cancel, done := d.cancel, d.done
	d.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// sinkLoop sends due rows to s until ctx ends: at once while full batches go
// through, else after PollInterval or an Enqueue.
func (d *Dispatcher) sinkLoop(ctx context.Context, s Sink) {
	wake := d.wake[s.Name()]
	timer := time.NewTimer(d.opts.PollInterval)
	defer timer.Stop()
	for {
		claimed, ok, err := d.deliverBatch(ctx, s)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.logger.Error("notification outbox", "sink", s.Name(), "err", err)
		}
		if ok && claimed == d.opts.BatchSize {
			continue
		}
		timer.Reset(d.opts.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-wake:
			timer.Stop() // since Go 1.23 a stopped timer delivers no stale tick
		case <-timer.C:
		}
	}
}

// outboxRow is a claimed row.
type outboxRow struct {
	ID        string    `db:"id"`
	Body      string    `db:"body"`
	Attempts  int       `db:"attempts"`
	CreatedAt time.Time `db:"created_at"`
}

// deliverBatch claims up to BatchSize due rows of s and sends them. ok says
// the sink took them all.
func (d *Dispatcher) deliverBatch(ctx context.Context, s Sink) (claimed int, ok bool, err error) {
	rows, err := d.claim(ctx, s.Name())
	if err != nil || len(rows) == 0 {
		return 0, false, err
	}
	var good []outboxRow
	ns := make([]Notification, 0, len(rows))
	for _, r := range rows {
		var n Notification
		if err := json.Unmarshal([]byte(r.Body), &n); err != nil {
			d.finish(ctx, s.Name(), []outboxRow{r}, []Notification{{ID: r.ID}},
				permanent(fmt.Errorf("stored notification is unreadable: %w", err)))
			continue
		}
		good = append(good, r)
		ns = append(ns, n)
	}
	if len(good) == 0 {
		return len(rows), false, nil
	}
	return len(rows), d.send(ctx, s, good, ns), nil
}

// claim leases up to BatchSize due rows of a sink: attempts counts the
// attempt now, and next_at moves past the send so no one else takes them.
func (d *Dispatcher) claim(ctx context.Context, sink string) ([]outboxRow, error) {
	now := store.Now()
	tx, err := d.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claiming notifications: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	q := `SELECT id, body, attempts, created_at FROM notification_outbox
		WHERE sink = ? AND delivered_at IS NULL AND failed_at IS NULL AND next_at <= ? AND created_at >= ?
		ORDER BY created_at, id LIMIT ?`
	if d.kind == store.Postgres {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	var rows []outboxRow
	if err := tx.SelectContext(ctx, &rows, d.db.Rebind(q), sink, now, now.Add(-d.opts.MaxAge), d.opts.BatchSize); err != nil {
		return nil, fmt.Errorf("claiming notifications: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	ids := make([]string, len(rows))
	for i := range rows {
		ids[i] = rows[i].ID
		rows[i].Attempts++
	}
	q, args, err := sqlx.In(`UPDATE notification_outbox SET attempts = attempts + 1, next_at = ? WHERE sink = ? AND id IN (?)`,
		now.Add(d.lease), sink, ids)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, d.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("claiming notifications: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claiming notifications: %w", err)
	}
	return rows, nil
}

// send hands ns (the bodies of rows) to s and records the outcome; it
// reports whether s took them.
func (d *Dispatcher) send(ctx context.Context, s Sink, rows []outboxRow, ns []Notification) bool {
	sctx, cancel := context.WithTimeout(ctx, d.opts.SendTimeout)
	err := s.Send(sctx, ns)
	cancel()
	name := s.Name()
	switch {
	case err == nil:
		d.metrics.attempts.WithLabelValues(name, "ok").Inc()
	case errors.Is(err, ErrPermanent):
		d.metrics.attempts.WithLabelValues(name, "permanent").Inc()
		if len(rows) > 1 {
			// One bad notification must not sink the batch: try each alone.
			for i := range rows {
				d.send(ctx, s, rows[i:i+1], ns[i:i+1])
			}
			return false
		}
	default:
		d.metrics.attempts.WithLabelValues(name, "retry").Inc()
	}
	d.finish(ctx, name, rows, ns, err)
	return err == nil
}

// finish records the outcome of sending rows: delivered, failed for good,
// handed back (the Dispatcher is stopping) or scheduled for a retry.
func (d *Dispatcher) finish(ctx context.Context, sink string, rows []outboxRow, ns []Notification, sendErr error) {
	stopping := ctx.Err() != nil
	// The outcome is written even while stopping, else the lease would hold
	// the rows back after a restart.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := store.Now()
	ids := make([]string, len(rows))
	for i := range rows {
		ids[i] = rows[i].ID
	}
	var err error
	switch {
	case sendErr == nil:
		err = d.updateIDs(ctx, `delivered_at = ?`, sink, ids, now)
		if err == nil {
			d.metrics.delivered.WithLabelValues(sink).Add(float64(len(rows)))
			d.logger.Debug("notifications delivered", "sink", sink, "count", len(rows))
		}
	case errors.Is(sendErr, ErrPermanent):
		err = d.updateIDs(ctx, `failed_at = ?, last_error = ?`, sink, ids, now, errText(sendErr))
		if err == nil {
			for i, r := range rows {
				d.dropped(sink, "permanent", r, ns[i], sendErr)
			}
		}
	case stopping:
		err = d.updateIDs(ctx, `next_at = ?, last_error = ?`, sink, ids, now, errText(sendErr))
	default:
		err = d.retryLater(ctx, sink, rows, ns, sendErr, now)
	}
	if err != nil {
		d.logger.Error("recording a notification outcome", "sink", sink, "err", err)
	}
}

// retryLater schedules each row's next attempt, or gives it up when that
// would fall past MaxAge.
func (d *Dispatcher) retryLater(ctx context.Context, sink string, rows []outboxRow, ns []Notification, sendErr error, now time.Time) error {
	after, _ := RetryAfter(sendErr)
	tx, err := d.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var expired []int
	var next time.Duration
	for i, r := range rows {
		delay := max(d.backoff(r.Attempts), after)
		at := now.Add(delay)
		if at.After(r.CreatedAt.Add(d.opts.MaxAge)) {
			expired = append(expired, i)
			_, err = tx.ExecContext(ctx, d.db.Rebind(`UPDATE notification_outbox SET failed_at = ?, last_error = ?
				WHERE id = ? AND sink = ? AND delivered_at IS NULL AND failed_at IS NULL`), now, errText(sendErr), r.ID, sink)
		} else {
			next = delay
			_, err = tx.ExecContext(ctx, d.db.Rebind(`UPDATE notification_outbox SET next_at = ?, last_error = ?
				WHERE id = ? AND sink = ? AND delivered_at IS NULL AND failed_at IS NULL`), at, errText(sendErr), r.ID, sink)
		}
		if err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, i := range expired {
		d.dropped(sink, "expired", rows[i], ns[i], sendErr)
	}
	if n := len(rows) - len(expired); n > 0 {
		d.logger.Warn("notifications not delivered, will retry", "sink", sink, "count", n,
			"attempt", rows[0].Attempts, "retry_in", next.Round(time.Millisecond), "err", sendErr)
	}
	return nil
}

func (d *Dispatcher) dropped(sink, reason string, r outboxRow, n Notification, err error) {
	d.metrics.dropped.WithLabelValues(sink, reason).Inc()
	d.logger.Error("notification dropped", "sink", sink, "reason", reason, "id", r.ID, "alert_id", n.AlertID,
		"event", n.Event, "attempts", r.Attempts, "age", time.Since(r.CreatedAt).Round(time.Second), "err", err)
}

// backoff is the delay after the given attempt (1 for the first):
// BaseDelay doubled per attempt, at most MaxDelay, with jitter.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	delay := d.opts.BaseDelay
	for i := 1; i < attempt && delay < d.opts.MaxDelay; i++ {
		delay *= 2
	}
	delay = min(delay, d.opts.MaxDelay)
	if j := d.opts.Jitter; j > 0 {
		delay = time.Duration(float64(delay) * (1 + j*(2*rand.Float64()-1)))
	}
	return min(delay, d.opts.MaxDelay)
}

// updateIDs sets columns (an SQL SET list) on rows of a sink still pending.
func (d *Dispatcher) updateIDs(ctx context.Context, set, sink string, ids []string, args ...any) error {
	q, qargs, err := sqlx.In(`UPDATE notification_outbox SET `+set+`
		WHERE sink = ? AND id IN (?) AND delivered_at IS NULL AND failed_at IS NULL`, append(args, sink, ids)...)
	if err != nil {
		return err
	}
	_, err = d.db.ExecContext(ctx, d.db.Rebind(q), qargs...)
	return err
}

// errText keeps an error to one line of bounded size for last_error.
func errText(err error) string {
	return truncate(strings.Join(strings.Fields(err.Error()), " "), 1000)
}

// sweepLoop expires old rows, removes finished ones past Retention and
// refreshes the pending gauge, at start and every sweepInterval.
func (d *Dispatcher) sweepLoop(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		if err := d.sweep(ctx); err != nil && ctx.Err() == nil {
			d.logger.Error("sweeping the notification outbox", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Dispatcher) sweep(ctx context.Context) error {
	now := store.Now()
	// Rows past MaxAge that are not in flight (next_at passed), of any sink,
	// including sinks no longer configured.
	var old []struct {
		outboxRow
		Sink      string `db:"sink"`
		LastError string `db:"last_error"`
	}
	if err := d.db.SelectContext(ctx, &old, d.db.Rebind(`SELECT id, sink, body, attempts, created_at, last_error
		FROM notification_outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND next_at <= ? AND created_at < ?
		ORDER BY created_at LIMIT 1000`), now, now.Add(-d.opts.MaxAge)); err != nil {
		return err
	}
	for _, r := range old {
		msg := "expired before delivery"
		if r.LastError != "" {
			msg += ": " + r.LastError
		}
		res, err := d.db.ExecContext(ctx, d.db.Rebind(`UPDATE notification_outbox SET failed_at = ?, last_error = ?
			WHERE id = ? AND sink = ? AND delivered_at IS NULL AND failed_at IS NULL AND next_at <= ?`), now, truncate(msg, 1000), r.ID, r.Sink, now)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 1 {
			var n Notification
			_ = json.Unmarshal([]byte(r.Body), &n)
			d.dropped(r.Sink, "expired", r.outboxRow, n, errors.New(msg))
		}
	}
	cutoff := now.Add(-d.opts.Retention)
	if _, err := d.db.ExecContext(ctx, d.db.Rebind(`DELETE FROM notification_outbox
		WHERE created_at < ? AND ((delivered_at IS NOT NULL AND delivered_at < ?) OR (failed_at IS NOT NULL AND failed_at < ?))`),
		cutoff, cutoff, cutoff); err != nil {
		return err
	}
	var counts []struct {
		Sink string `db:"sink"`
		N    int    `db:"n"`
	}
	if err := d.db.SelectContext(ctx, &counts, `SELECT sink, count(*) AS n FROM notification_outbox
		WHERE delivered_at IS NULL AND failed_at IS NULL GROUP BY sink`); err != nil {
		return err
	}
	for _, s := range d.sinks {
		d.metrics.pending.WithLabelValues(s.Name()).Set(0)
	}
	for _, c := range counts {
		d.metrics.pending.WithLabelValues(c.Sink).Set(float64(c.N))
	}
	return nil
}
