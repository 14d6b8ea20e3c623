package ship

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// failure is a batch the server did not take, to try again later.
type failure struct {
	err error
	// slow: retry at the slow pace (token rejected, unexpected answer).
	slow bool
	// after is the server's Retry-After, zero when it gave none.
	after time.Duration
	// logged: already logged, louder than a retry warning.
	logged bool
	// batch is the id of the batch that failed: a segment's or a piece's.
	batch string
}

// Run ships sealed segments, oldest first, until ctx is done or the spooler
// is closed. Transient failures (network, timeouts, 429, 5xx) are retried
// with exponential backoff and jitter up to 30 s, honouring Retry-After; a
// rejected token (401, 403) is logged as an error and retried every minute;
// a batch refused as invalid (400) goes to rejected/ with the server's
// answer; a batch too large (413) is sent in halves. When ctx ends, Run
// seals the segment being written and makes one last attempt at what is
// left, bounded by Options.Grace; what is still unsent stays on disk.
// Close stops Run at once, with no last flush. Run returns nil, or
// ErrClosed if the spooler was closed before it started.
func (s *Spooler) Run(ctx context.Context) error {
	s.wmu.Lock()
	if s.closed {
		s.wmu.Unlock()
		return ErrClosed
	}
	if !s.running.CompareAndSwap(false, true) {
		s.wmu.Unlock()
		return errors.New("ship: Run is already running")
	}
	s.runWG.Add(1)
	s.wmu.Unlock()
	defer s.runWG.Done()
	defer s.running.Store(false)

	rctx, cancel := s.untilClosed(ctx)
	defer cancel()
	s.log.Info("shipping observations", "server", redacted(s.endpoint), "pending_segments", s.Stats().Pending)
	attempt := 0
	for rctx.Err() == nil {
		seg := s.next()
		if seg == nil {
			select {
			case <-rctx.Done():
			case <-s.shipKick:
			}
			continue
		}
		f := s.shipSegment(rctx, seg)
		if f == nil {
			if attempt > 0 {
				s.log.Info("the central server takes batches again", "pending_segments", s.Stats().Pending)
			}
			attempt = 0
			continue
		}
		if rctx.Err() != nil {
			break
		}
		attempt++
		wait := s.delay(f, attempt)
		if !f.logged {
			s.log.Warn("shipping a batch failed; it stays in the spool and is retried",
				"batch", f.batch, "err", f.err, "attempt", attempt, "retry_in", wait.Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-rctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	select {
	case <-s.done:
		return nil // Close stops at once: no last flush
	default:
	}
	// The last flush: seal what was added and try once, briefly.
	s.Seal()
	fctx, fcancel := s.untilClosed(context.WithoutCancel(ctx))
	defer fcancel()
	fctx, tcancel := context.WithTimeout(fctx, s.opts.Grace)
	defer tcancel()
	for fctx.Err() == nil {
		seg := s.next()
		if seg == nil {
			break
		}
		if s.shipSegment(fctx, seg) != nil {
			break
		}
	}
	if st := s.Stats(); st.Pending > 0 {
		s.log.Warn("stopping with observations unsent; they stay in the spool for the next start",
			"pending_segments", st.Pending, "bytes", st.Bytes, "last_error", st.LastError)
	}
	return nil
}

// untilClosed is ctx, also cancelled when the spooler closes.
func (s *Spooler) untilClosed(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// delay is how long to wait before the next attempt.
func (s *Spooler) delay(f *failure, attempt int) time.Duration {
	if f.after > 0 {
		return min(f.after, s.retry.maxAfter)
	}
	d := s.retry.max
	if f.slow {
		d = s.retry.slow
	} else if attempt < 30 {
		d = min(s.retry.base<<(attempt-1), s.retry.max)
	}
	// Jitter over the upper half, so many sensors do not return in step.
	return d/2 + rand.N(d/2+1)
}

// next returns the oldest sealed segment, marked busy, or nil.
func (s *Spooler) next() *segment {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.queue) == 0 {
		return nil
	}
	seg := s.queue[0]
	seg.busy = true
	return seg
}

// shipSegment sends what is left of a segment; nil when it is resolved
// (every part acknowledged or rejected) and gone from the queue.
func (s *Spooler) shipSegment(ctx context.Context, seg *segment) *failure {
	defer func() {
		s.qmu.Lock()
		seg.busy = false
		s.qmu.Unlock()
	}()
	if seg.parts == nil {
		data, err := os.ReadFile(seg.path)
		if err != nil {
			s.log.Error("spool: cannot read a segment", "file", seg.path, "err", err)
			if !errors.Is(err, os.ErrNotExist) {
				s.quarantine(seg.path, seg.id)
			}
			s.forget(seg)
			return nil
		}
		lines, bad := splitLines(data)
		seg.bad = bad
		if bad > 0 {
			s.corrupt.Add(int64(bad))
			s.log.Warn("spool: a segment has unreadable lines; shipping the rest and quarantining the file",
				"file", seg.path, "unreadable_lines", bad, "good_lines", len(lines))
		}
		if len(lines) == 0 {
			s.finish(seg)
			return nil
		}
		seg.parts = []part{{id: seg.id, lines: lines}}
	}
	for len(seg.parts) > 0 {
		p := seg.parts[0]
		status, body, hdr, err := s.post(ctx, p)
		fail := func(f *failure) *failure {
			f.batch = p.id
			if ctx.Err() != nil {
				return f // stopping: not a failure of the server's
			}
			return s.failed(f)
		}
		switch {
		case err != nil:
			return fail(&failure{err: err})
		case status >= 200 && status < 300:
			var res struct {
				Duplicate bool `json:"duplicate"`
			}
			_ = json.Unmarshal(body, &res)
			if res.Duplicate {
				s.dups.Add(1)
			}
			s.batches.Add(1)
			s.shipped.Add(int64(len(p.lines)))
			s.lastSuccess.Store(time.Now().UnixNano())
			s.resolved(seg, len(p.lines))
		case status == http.StatusRequestEntityTooLarge && len(p.lines) > 1:
			// Halves get ids derived from the whole: after a crash the same
			// segment splits the same way into the same ids.
			h := len(p.lines) / 2
			halves := []part{{id: p.id + ".0", lines: p.lines[:h]}, {id: p.id + ".1", lines: p.lines[h:]}}
			seg.parts = slices.Concat(halves, seg.parts[1:])
			s.log.Info("the server found a batch too large; sending it in halves", "batch", p.id, "observations", len(p.lines))
		case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge:
			s.reject(p, status, body)
			s.resolved(seg, len(p.lines))
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			err := fmt.Errorf("token rejected by the central server (%d %s): %s; check --token-file or RECKON_TOKEN (an operator token is needed)",
				status, http.StatusText(status), problemDetail(body))
			s.log.Error("the central server rejected the sensor's token; observations are kept in the spool and retried every minute", "err", err)
			return fail(&failure{err: err, slow: true, logged: true})
		case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
			return fail(&failure{err: fmt.Errorf("%d %s: %s", status, http.StatusText(status), problemDetail(body)), after: retryAfter(hdr)})
		default:
			// 404, 405, 415, a redirect ...: most likely a wrong server URL
			// or a server of another version. Keep the data, retry slowly.
			detail := problemDetail(body)
			if loc := hdr.Get("Location"); loc != "" {
				detail = "redirected to " + loc + ": give the server URL it names"
			}
			err := fmt.Errorf("unexpected answer %d %s from %s: %s", status, http.StatusText(status), redacted(s.endpoint), detail)
			s.log.Error("the central server's answer makes no sense to the sensor; observations are kept in the spool and retried every minute", "err", err)
			return fail(&failure{err: err, slow: true, logged: true})
		}
	}
	s.finish(seg)
	return nil
}

// resolved notes n lines of a segment shipped or rejected.
func (s *Spooler) resolved(seg *segment, n int) {
	seg.parts = seg.parts[1:]
	s.qmu.Lock()
	seg.lines -= int64(n)
	s.qmu.Unlock()
}

func (s *Spooler) failed(f *failure) *failure {
	s.errMu.Lock()
	s.lastErr, s.lastErrAt = f.err.Error(), time.Now()
	s.errMu.Unlock()
	return f
}

// finish removes a resolved segment: deleted, or quarantined when it had
// unreadable lines.
func (s *Spooler) finish(seg *segment) {
	if seg.bad > 0 {
		s.quarantine(seg.path, seg.id)
	} else if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Error("spool: cannot delete a shipped segment; it may be sent again (the server takes it once)", "file", seg.path, "err", err)
	}
	s.forget(seg)
}

// forget takes a segment out of the queue and the byte count.
func (s *Spooler) forget(seg *segment) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if i := slices.Index(s.queue, seg); i >= 0 {
		s.queue = slices.Delete(s.queue, i, i+1)
		s.bytes.Add(-seg.size)
	}
}

// reject keeps a batch the server refused, with its answer, in rejected/.
func (s *Spooler) reject(p part, status int, body []byte) {
	dir := filepath.Join(s.opts.Dir, rejectDir)
	data := append(bytes.Join(p.lines, []byte{'\n'}), '\n')
	err := os.WriteFile(filepath.Join(dir, p.id+sealedExt), data, 0o600)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, p.id+problemExt), body, 0o600)
	}
	if err != nil {
		s.log.Error("spool: cannot keep a rejected batch", "batch", p.id, "err", err)
	}
	s.rejected.Add(int64(len(p.lines)))
	s.failed(&failure{err: fmt.Errorf("batch %s rejected (%d): %s", p.id, status, problemDetail(body))})
	s.log.Error("the central server refused a batch as invalid; it is kept in rejected/ and the spool moves on",
		"batch", p.id, "observations", len(p.lines), "status", status, "detail", problemDetail(body), "file", filepath.Join(dir, p.id+sealedExt))
	s.pruneRejected()
}

// post sends one batch. It returns the answer, or err when none came.
func (s *Spooler) post(ctx context.Context, p part) (status int, body []byte, hdr http.Header, err error) {
	id, _ := json.Marshal(p.id)
	size := len(id) + 40
	for _, l := range p.lines {
		size += len(l) + 1
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	buf.WriteString(`{"batch_id":`)
	buf.Write(id)
	buf.WriteString(`,"observations":[`)
	for i, l := range p.lines {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(l)
	}
	buf.WriteString("]}")

	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(buf.Bytes()))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("Authorization", "Bearer "+s.opts.Token)
	req.Header.Set("User-Agent", "reckon-sensor")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// The answer was cut off: the batch may or may not be in. Sending
		// it again is safe (same batch id).
		return 0, nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, body, resp.Header, nil
}

// problemDetail is the detail of a problem+json answer, or its start.
func problemDetail(body []byte) string {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) == nil && (p.Detail != "" || p.Title != "") {
		if p.Detail == "" {
			return p.Title
		}
		return p.Detail
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(n, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
