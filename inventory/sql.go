package inventory

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
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
	Doc       string    `db:"doc"`
	ipKeys    []string
}

func toRow(a *Asset) (assetRow, error) {
	doc, err := json.Marshal(a)
	if err != nil {
		return assetRow{}, err
	}
	s := a.Summary()
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
	row := assetRow{ID: a.ID, Status: a.Status.String(), Identity: a.Identity.String(), Missing: a.Missing,
		FirstSeen: a.FirstSeen.Time(), LastSeen: a.LastSeen.Time(), Search: strings.TrimSpace(search.String()),
		Sources: " " + strings.Join(s.Sources, " ") + " ", Doc: string(doc)}
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

// loadAssets streams every stored asset.
func (q sqlStore) loadAssets(ctx context.Context, fn func(*Asset)) error {
	rows, err := q.db().QueryContext(ctx, `SELECT doc FROM assets`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var doc []byte
	for rows.Next() {
		if err := rows.Scan(&doc); err != nil {
			return err
		}
		a := new(Asset)
		if err := json.Unmarshal(doc, a); err != nil {
			return fmt.Errorf("stored asset: %w", err)
		}
		fn(a)
	}
	return rows.Err()
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
	const cols = 9
	err = chunk(len(f.rows), 500, func(lo, hi int) error {
		args := make([]any, 0, (hi-lo)*cols)
		for _, r := range f.rows[lo:hi] {
			args = append(args, r.ID, r.Status, r.Identity, r.Missing, r.FirstSeen, r.LastSeen, r.Search, r.Sources, r.Doc)
		}
		_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO assets (id, status, identity, missing, first_seen, last_seen, search, sources, doc) VALUES `+
			placeholders(hi-lo, cols)+` ON CONFLICT (id) DO UPDATE SET status = excluded.status, identity = excluded.identity,
			missing = excluded.missing, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
			search = excluded.search, sources = excluded.sources, doc = excluded.doc`), args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing assets: %w", err)
	}
	clearIPs := make([]string, 0, len(f.ipsFor)+len(f.deleted))
	for _, r := range f.ipsFor {
		clearIPs = append(clearIPs, r.ID)
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
	var ipArgs []any
	for _, r := range f.ipsFor {
		for _, k := range r.ipKeys {
			ipArgs = append(ipArgs, k, r.ID)
		}
	}
	err = chunk(len(ipArgs)/2, 1000, func(lo, hi int) error {
		_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO asset_ips (ip_key, asset_id) VALUES `+placeholders(hi-lo, 2)+` ON CONFLICT DO NOTHING`), ipArgs[lo*2:hi*2]...)
		return err
	})
	if err != nil {
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
	now := store.Now()
	for _, m := range f.merges {
		if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO asset_merges (from_id, into_id, merged_at) VALUES (?, ?, ?)
			ON CONFLICT (from_id) DO UPDATE SET into_id = excluded.into_id, merged_at = excluded.merged_at`), m[0], m[1], now); err != nil {
			return fmt.Errorf("recording merges: %w", err)
		}
		// Earlier merges into the absorbed asset now lead to the survivor.
		if _, err := tx.ExecContext(ctx, db.Rebind(`UPDATE asset_merges SET into_id = ? WHERE into_id = ?`), m[1], m[0]); err != nil {
			return fmt.Errorf("recording merges: %w", err)
		}
	}
	err = chunk(len(f.events), 1000, func(lo, hi int) error {
		args := make([]any, 0, (hi-lo)*4)
		for _, ev := range f.events[lo:hi] {
			detail := "{}"
			if len(ev.Detail) > 0 {
				b, _ := json.Marshal(ev.Detail)
				detail = string(b)
			}
			args = append(args, ev.AssetID, ev.Time.UTC(), ev.Kind, detail)
		}
		_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO asset_events (asset_id, at, kind, detail) VALUES `+placeholders(hi-lo, 4)), args...)
		return err
	})
	if err != nil {
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
