package inventory

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/reckon-dev/reckon/discovery"
	"github.com/reckon-dev/reckon/inventory/store"
)

// assetRow is an asset as written to the assets table.
type assetRow struct {
	ID        string    `db:"id"`
	Status    string    `db:"status"`
	Identity  string    `db:"identity"`
	Missing   bool      `db:"missing"`
	FirstSeen time.Time `db:"first_seen"`
	LastSeen  time.Time `db:"last_seen"`
	Search    string    `db:"search"`
	Sources   string    `db:"sources"`
	Summary   string    `db:"summary"`
	Doc       string    `db:"doc"`
	ipKeys    []string
	// stored: the asset has rows already (its old IPs must be cleared).
	stored bool
}

func toRow(a *Asset) (assetRow, error) {
	doc, err := json.Marshal(a)
	if err != nil {
		return assetRow{}, err
	}
	s := a.Summary()
	sum, err := json.Marshal(s)
	if err != nil {
		return assetRow{}, err
	}
	var search strings.Builder
	for _, v := range s.Hostnames {
		search.WriteString(v + " ")
	}
	for _, v := range s.IPs {
		search.WriteString(v + " ")
	}
	for _, v := range s.MACs {
		search.WriteString(v + " ")
	}
	search.WriteString(strings.ToLower(a.Vendor.String() + " " + a.OS.String()))
	row := assetRow{ID: a.ID.String(), Status: a.Status.String(), Identity: a.Identity.String(), Missing: a.Missing,
		FirstSeen: a.FirstSeen.Time(), LastSeen: a.LastSeen.Time(), Search: strings.TrimSpace(search.String()),
		Sources: " " + strings.Join(s.Sources, " ") + " ", Summary: string(sum), Doc: string(doc)}
	for _, ip := range s.IPs {
		if k, ok := ipKey(ip); ok {
			row.ipKeys = append(row.ipKeys, k)
		}
	}
	return row, nil
}

// ipKey is an IP as 32 hex digits of its 16-byte form: IPv4 as IPv4-mapped,
// so that a subnet is a range of keys.
func ipKey(s string) (string, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", false
	}
	b := a.As16()
	return hex.EncodeToString(b[:]), true
}

// prefixRange is the first and last key of a subnet.
func prefixRange(p netip.Prefix) (string, string) {
	p = p.Masked()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	b := p.Addr().As16()
	lo := b
	hi := b
	for i := bits; i < 128; i++ {
		hi[i/8] |= 1 << (7 - i%8)
	}
	return hex.EncodeToString(lo[:]), hex.EncodeToString(hi[:])
}

// sqlStore is the inventory's SQL.
type sqlStore struct {
	s *store.Store
}

func (q sqlStore) db() *sqlx.DB { return q.s.DB }

// chunk splits n items into runs of at most size.
func chunk(n, size int, fn func(lo, hi int) error) error {
	for lo := 0; lo < n; lo += size {
		if err := fn(lo, min(lo+size, n)); err != nil {
			return err
		}
	}
	return nil
}

// placeholders builds "(?,?,?),(?,?,?)" for rows of cols values.
func placeholders(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

// insertBatch records a batch; dup says the batch id was seen before.
func (q sqlStore) insertBatch(ctx context.Context, batchID, by string, obs []discovery.Observation) (seq int64, dup bool, err error) {
	body, err := json.Marshal(obs)
	if err != nil {
		return 0, false, err
	}
	db := q.db()
	const query = `INSERT INTO observation_batches (batch_id, received_at, received_by, count, body) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (batch_id) DO NOTHING RETURNING seq`
	err = db.GetContext(ctx, &seq, db.Rebind(query), batchID, store.Now(), by, len(obs), string(body))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, true, nil
	}
	return seq, false, err
}

type pendingBatch struct {
	Seq  int64  `db:"seq"`
	Body string `db:"body"`
}

func (q sqlStore) pendingBatches(ctx context.Context, after int64, limit int) ([]pendingBatch, error) {
	var out []pendingBatch
	db := q.db()
	err := db.SelectContext(ctx, &out, db.Rebind(`SELECT seq, body FROM observation_batches WHERE applied = ? AND seq > ? ORDER BY seq LIMIT ?`), false, after, limit)
	return out, err
}

// loadAssets streams every stored asset to fn (called from one goroutine),
// decoding the documents on every core: at a million assets decoding is
// most of the start-up time.
func (q sqlStore) loadAssets(ctx context.Context, fn func(*Asset)) error {
	rows, err := q.db().QueryContext(ctx, `SELECT doc FROM assets`)
	if err != nil {
		return err
	}
	defer rows.Close()
	docs := make(chan [][]byte, 4)
	decoded := make(chan []*Asset, 4)
	var firstErr error
	var errMu sync.Mutex
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for chunk := range docs {
				out := make([]*Asset, 0, len(chunk))
				for _, d := range chunk {
					a := new(Asset)
					if err := json.Unmarshal(d, a); err != nil {
						fail(fmt.Errorf("stored asset: %w", err))
						continue
					}
					out = append(out, a)
				}
				decoded <- out
			}
		}()
	}
	go func() {
		defer close(docs)
		chunk := make([][]byte, 0, 512)
		for rows.Next() {
			var d []byte // Scan into *[]byte copies: the chunk may outlive the row
			if err := rows.Scan(&d); err != nil {
				fail(err)
				return
			}
			chunk = append(chunk, d)
			if len(chunk) == cap(chunk) {
				docs <- chunk
				chunk = make([][]byte, 0, 512)
			}
		}
		if err := rows.Err(); err != nil {
			fail(err)
		}
		if len(chunk) > 0 {
			docs <- chunk
		}
	}()
	go func() {
		wg.Wait()
		close(decoded)
	}()
	for as := range decoded {
		for _, a := range as {
			fn(a)
		}
	}
	return firstErr
}

func (q sqlStore) loadMerges(ctx context.Context, fn func(from, to string)) error {
	rows, err := q.db().QueryContext(ctx, `SELECT from_id, into_id FROM asset_merges`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			return err
		}
		fn(from, to)
	}
	return rows.Err()
}

// flushSet is one write of the engine's changes.
type flushSet struct {
	rows    []assetRow
	ipsFor  []assetRow // rows whose current IPs changed
	deleted []string   // merged away
	merges  [][2]string
	events  []Event
	upToSeq int64 // batches up to this seq are now applied
}

// write stores a flush set in one transaction.
func (q sqlStore) write(ctx context.Context, f *flushSet) error {
	db := q.db()
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if err := q.writeAssets(ctx, tx, f.rows); err != nil {
		return fmt.Errorf("writing assets: %w", err)
	}
	clearIPs := make([]string, 0, len(f.ipsFor)+len(f.deleted))
	for _, r := range f.ipsFor {
		if r.stored {
			clearIPs = append(clearIPs, r.ID)
		}
	}
	clearIPs = append(clearIPs, f.deleted...)
	err = chunk(len(clearIPs), 500, func(lo, hi int) error {
		args := make([]any, 0, hi-lo)
		for _, id := range clearIPs[lo:hi] {
			args = append(args, id)
		}
		_, err := tx.ExecContext(ctx, db.Rebind(`DELETE FROM asset_ips WHERE asset_id IN (`+strings.TrimSuffix(strings.Repeat("?,", hi-lo), ",")+`)`), args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("clearing asset IPs: %w", err)
	}
	var ipRows [][]any
	for _, r := range f.ipsFor {
		for _, k := range r.ipKeys {
			ipRows = append(ipRows, []any{k, r.ID})
		}
	}
	if err := q.bulkInsert(ctx, tx, "asset_ips", []string{"ip_key", "asset_id"}, ipRows, " ON CONFLICT DO NOTHING"); err != nil {
		return fmt.Errorf("writing asset IPs: %w", err)
	}
	err = chunk(len(f.deleted), 500, func(lo, hi int) error {
		args := make([]any, 0, hi-lo)
		for _, id := range f.deleted[lo:hi] {
			args = append(args, id)
		}
		_, err := tx.ExecContext(ctx, db.Rebind(`DELETE FROM assets WHERE id IN (`+strings.TrimSuffix(strings.Repeat("?,", hi-lo), ",")+`)`), args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting merged assets: %w", err)
	}
	if err := q.writeMerges(ctx, tx, f.merges); err != nil {
		return fmt.Errorf("recording merges: %w", err)
	}
	evRows := make([][]any, len(f.events))
	for i, ev := range f.events {
		detail := "{}"
		if len(ev.Detail) > 0 {
			b, _ := json.Marshal(ev.Detail)
			detail = string(b)
		}
		evRows[i] = []any{ev.AssetID, ev.Time.UTC(), ev.Kind, detail}
	}
	if err := q.bulkInsert(ctx, tx, "asset_events", []string{"asset_id", "at", "kind", "detail"}, evRows, ""); err != nil {
		return fmt.Errorf("writing events: %w", err)
	}
	if f.upToSeq > 0 {
		if _, err := tx.ExecContext(ctx, db.Rebind(`UPDATE observation_batches SET applied = ? WHERE seq <= ? AND applied = ?`), true, f.upToSeq, false); err != nil {
			return fmt.Errorf("marking batches applied: %w", err)
		}
	}
	return tx.Commit()
}

// pruneBatches deletes applied raw batches received before cutoff.
func (q sqlStore) pruneBatches(ctx context.Context, cutoff time.Time) (int64, error) {
	db := q.db()
	res, err := db.ExecContext(ctx, db.Rebind(`DELETE FROM observation_batches WHERE applied = ? AND received_at < ?`), true, cutoff.UTC())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// writeMerges records merges {from, into} in bulk, and points earlier
// merges into an absorbed asset at the survivor.
func (q sqlStore) writeMerges(ctx context.Context, tx *sqlx.Tx, merges [][2]string) error {
	if len(merges) == 0 {
		return nil
	}
	db := q.db()
	// One row per absorbed asset: the last merge of it wins.
	last := make(map[string]int, len(merges))
	for i, m := range merges {
		last[m[0]] = i
	}
	uniq := make([][2]string, 0, len(last))
	for i, m := range merges {
		if last[m[0]] == i {
			uniq = append(uniq, m)
		}
	}
	now := store.Now()
	err := chunk(len(uniq), 1000, func(lo, hi int) error {
		args := make([]any, 0, (hi-lo)*3)
		for _, m := range uniq[lo:hi] {
			args = append(args, m[0], m[1], now)
		}
		_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO asset_merges (from_id, into_id, merged_at) VALUES `+placeholders(hi-lo, 3)+`
			ON CONFLICT (from_id) DO UPDATE SET into_id = excluded.into_id, merged_at = excluded.merged_at`), args...)
		return err
	})
	if err != nil {
		return err
	}
	// Repoint: whatever went into an absorbed asset now leads to its survivor;
	// repeated for chains of merges within one write.
	return chunk(len(uniq), 1000, func(lo, hi int) error {
		args := make([]any, 0, (hi-lo)*2)
		for _, m := range uniq[lo:hi] {
			args = append(args, m[0], m[1])
		}
		query := db.Rebind(`WITH v (from_id, into_id) AS (VALUES ` + placeholders(hi-lo, 2) + `)
			UPDATE asset_merges SET into_id = (SELECT v.into_id FROM v WHERE v.from_id = asset_merges.into_id)
			WHERE into_id IN (SELECT from_id FROM v)`)
		for range 8 {
			res, err := tx.ExecContext(ctx, query, args...)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				break
			}
		}
		return nil
	})
}

var assetCols = []string{"id", "status", "identity", "missing", "first_seen", "last_seen", "search", "sources", "summary", "doc"}

const assetUpsert = ` ON CONFLICT (id) DO UPDATE SET status = excluded.status, identity = excluded.identity,
	missing = excluded.missing, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
	search = excluded.search, sources = excluded.sources, summary = excluded.summary, doc = excluded.doc`

// writeAssets upserts asset rows. On PostgreSQL they are copied into a
// temporary table and merged in one statement, several times faster than
// multi-row VALUES.
func (q sqlStore) writeAssets(ctx context.Context, tx *sqlx.Tx, rows []assetRow) error {
	if len(rows) == 0 {
		return nil
	}
	vals := make([][]any, len(rows))
	for i, r := range rows {
		vals[i] = []any{r.ID, r.Status, r.Identity, r.Missing, r.FirstSeen, r.LastSeen, r.Search, r.Sources, r.Summary, r.Doc}
	}
	if q.s.Kind != store.Postgres || len(rows) < 200 {
		return q.bulkInsert(ctx, tx, "assets", assetCols, vals, assetUpsert)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE assets_in (LIKE assets) ON COMMIT DROP`); err != nil {
		return err
	}
	if err := copyIn(ctx, tx, "assets_in", assetCols, vals); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO assets (`+strings.Join(assetCols, ", ")+`) SELECT `+strings.Join(assetCols, ", ")+` FROM assets_in`+assetUpsert)
	return err
}

// bulkInsert inserts rows: by COPY on PostgreSQL when no conflict clause is
// needed, else by multi-row INSERT statements.
func (q sqlStore) bulkInsert(ctx context.Context, tx *sqlx.Tx, table string, cols []string, rows [][]any, suffix string) error {
	if len(rows) == 0 {
		return nil
	}
	if q.s.Kind == store.Postgres && suffix == "" && len(rows) >= 200 {
		return copyIn(ctx, tx, table, cols, rows)
	}
	per := max(1, 4000/len(cols))
	return chunk(len(rows), per, func(lo, hi int) error {
		args := make([]any, 0, (hi-lo)*len(cols))
		for _, r := range rows[lo:hi] {
			args = append(args, r...)
		}
		_, err := tx.ExecContext(ctx, q.db().Rebind(`INSERT INTO `+table+` (`+strings.Join(cols, ", ")+`) VALUES `+placeholders(hi-lo, len(cols))+suffix), args...)
		return err
	})
}

// copyIn streams rows into a PostgreSQL table with COPY.
func copyIn(ctx context.Context, tx *sqlx.Tx, table string, cols []string, rows [][]any) error {
	// Table and column names are this package's constants, never input.
	stmt, err := tx.PrepareContext(ctx, "COPY "+table+" ("+strings.Join(cols, ", ")+") FROM STDIN")
	if err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := stmt.ExecContext(ctx, r...); err != nil {
			stmt.Close()
			return err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		stmt.Close()
		return err
	}
	return stmt.Close()
}
