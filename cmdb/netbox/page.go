package netbox

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"golang.org/x/sync/errgroup"
)

// page is NetBox's list envelope. Count is absent in cursor mode (and
// from proxies that strip it); then Next is followed.
type page[T any] struct {
	Count   *int    `json:"count"`
	Next    *string `json:"next"`
	Results []T     `json:"results"`
}

// identified is a record with NetBox's primary key.
type identified interface{ key() int }

// list reads every record of path matching q. It asks for the first page,
// then for all remaining offsets at once (bounded by the client's
// concurrency and rate limit), and checks that the pages add up: the same
// count on every page, full pages but the last, no record twice. Without a
// count it follows next links one by one.
func list[T identified](ctx context.Context, c *Client, path string, q url.Values) ([]T, error) {
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	// Ordering by primary key keeps offsets stable while records are added
	// (new ids sort last) and makes the pages deterministic.
	q2.Set("ordering", "id")
	q2.Set("limit", strconv.Itoa(c.o.PageSize))
	first := c.abs(path, q2)
	var p0 page[T]
	if err := c.do(ctx, http.MethodGet, first, nil, &p0); err != nil {
		return nil, err
	}
	if p0.Count == nil {
		return follow(ctx, c, first, p0)
	}
	count := *p0.Count
	// NetBox caps limit at its MAX_PAGE_SIZE: when it sent fewer records
	// than asked while there are more, that is its page size.
	limit := c.o.PageSize
	if p0.Next != nil && len(p0.Results) < limit {
		limit = len(p0.Results)
	}
	bad := func(u, format string, a ...any) error {
		return fmt.Errorf("netbox: GET %s: %w: %s", u, ErrInconsistent, fmt.Sprintf(format, a...))
	}
	if want := min(limit, count); len(p0.Results) != want {
		return nil, bad(first, "%d results on the first page, want %d of %d", len(p0.Results), want, count)
	}
	if limit == 0 {
		return nil, bad(first, "empty first page but count %d", count)
	}
	pages := make([][]T, (count+limit-1)/limit)
	if len(pages) == 0 {
		return nil, nil
	}
	pages[0] = p0.Results
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.o.Concurrency)
	for i := 1; i < len(pages); i++ {
		off := i * limit
		qi := url.Values{}
		for k, v := range q2 {
			qi[k] = v
		}
		qi.Set("limit", strconv.Itoa(limit))
		qi.Set("offset", strconv.Itoa(off))
		u := c.abs(path, qi)
		g.Go(func() error {
			var p page[T]
			if err := c.do(gctx, http.MethodGet, u, nil, &p); err != nil {
				return err
			}
			if p.Count == nil || *p.Count != count {
				got := "none"
				if p.Count != nil {
					got = strconv.Itoa(*p.Count)
				}
				return bad(u, "count %s, the first page said %d (changed during the read)", got, count)
			}
			if want := min(limit, count-off); len(p.Results) != want {
				return bad(u, "%d results, want %d", len(p.Results), want)
			}
			pages[i] = p.Results
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]T, 0, count)
	seen := make(map[int]struct{}, count)
	for i, pg := range pages {
		for _, r := range pg {
			if _, dup := seen[r.key()]; dup {
				return nil, bad(path, "record %d seen twice (page %d): records moved during the read", r.key(), i)
			}
			seen[r.key()] = struct{}{}
			out = append(out, r)
		}
	}
	return out, nil
}

// follow reads the remaining pages by their next links, one by one.
func follow[T identified](ctx context.Context, c *Client, first string, p page[T]) ([]T, error) {
	out := p.Results
	seen := map[int]struct{}{}
	for _, r := range out {
		seen[r.key()] = struct{}{}
	}
	u := first
	for p.Next != nil && *p.Next != "" {
		next, err := c.rebase(*p.Next)
		if err != nil {
			return nil, err
		}
		if next == u {
			return nil, fmt.Errorf("netbox: GET %s: %w: next link points to itself", u, ErrInconsistent)
		}
		u = next
		p = page[T]{}
		if err := c.do(ctx, http.MethodGet, u, nil, &p); err != nil {
			return nil, err
		}
		for _, r := range p.Results {
			if _, dup := seen[r.key()]; dup {
				return nil, fmt.Errorf("netbox: GET %s: %w: record %d seen twice", u, ErrInconsistent, r.key())
			}
			seen[r.key()] = struct{}{}
			out = append(out, r)
		}
	}
	return out, nil
}
