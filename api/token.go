package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reckon-dev/reckon/inventory/store"
)

// Role is what a token may do; each role may do all that the ones below it may.
type Role string

const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Allows says whether role r may do what needs role need.
func (r Role) Allows(need Role) bool { return r.rank() >= need.rank() && need.rank() > 0 }

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if r.rank() == 0 {
		return "", fmt.Errorf("role %q: want viewer, operator or admin", s)
	}
	return r, nil
}

// Token is a stored API token; the secret itself is never stored.
type Token struct {
	ID         int64      `db:"id" json:"id"`
	Name       string     `db:"name" json:"name"`
	Role       Role       `db:"role" json:"role"`
	Prefix     string     `db:"prefix" json:"prefix"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	CreatedBy  string     `db:"created_by" json:"created_by"`
	LastUsedAt *time.Time `db:"last_used_at" json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `db:"revoked_at" json:"revoked_at,omitempty"`
}

// ErrTokenNotFound is returned for an unknown or revoked token.
var ErrTokenNotFound = errors.New("token not found")

// ErrTokenNameTaken is returned when an active token already has the name.
var ErrTokenNameTaken = errors.New("an active token already has that name")

// Tokens keeps API tokens in the store, hashed.
type Tokens struct {
	s *store.Store
}

// NewTokens returns the token store over s.
func NewTokens(s *store.Store) *Tokens { return &Tokens{s: s} }

const tokenPrefix = "rk_"

func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Create makes a token and returns its secret, which is shown once and never again.
func (t *Tokens) Create(ctx context.Context, name string, role Role, createdBy string) (string, Token, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", Token{}, errors.New("token name must be 1 to 100 characters")
	}
	if role.rank() == 0 {
		return "", Token{}, fmt.Errorf("role %q: want viewer, operator or admin", role)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Token{}, err
	}
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	tok := Token{Name: name, Role: role, Prefix: secret[:len(tokenPrefix)+6], CreatedAt: store.Now(), CreatedBy: createdBy}
	db := t.s.DB
	var taken int
	if err := db.GetContext(ctx, &taken, db.Rebind(`SELECT count(*) FROM api_tokens WHERE name = ? AND revoked_at IS NULL`), name); err != nil {
		return "", Token{}, fmt.Errorf("creating token: %w", err)
	}
	if taken > 0 {
		return "", Token{}, fmt.Errorf("%w: %q", ErrTokenNameTaken, name)
	}
	err := db.GetContext(ctx, &tok.ID, db.Rebind(`INSERT INTO api_tokens (name, role, token_hash, prefix, created_at, created_by)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), tok.Name, tok.Role, hashToken(secret), tok.Prefix, tok.CreatedAt, tok.CreatedBy)
	if err != nil {
		return "", Token{}, fmt.Errorf("creating token: %w", err)
	}
	return secret, tok, nil
}

// Authenticate returns the active token whose secret this is.
func (t *Tokens) Authenticate(ctx context.Context, secret string) (Token, error) {
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 200 {
		return Token{}, ErrTokenNotFound
	}
	db := t.s.DB
	var tok Token
	err := db.GetContext(ctx, &tok, db.Rebind(`SELECT id, name, role, prefix, created_at, created_by, last_used_at, revoked_at
		FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL`), hashToken(secret))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrTokenNotFound
	}
	if err != nil {
		return Token{}, fmt.Errorf("checking token: %w", err)
	}
	// Record use at most once a minute per token, to keep reads cheap.
	now := store.Now()
	if tok.LastUsedAt == nil || now.Sub(*tok.LastUsedAt) > time.Minute {
		_, _ = db.ExecContext(ctx, db.Rebind(`UPDATE api_tokens SET last_used_at = ? WHERE id = ?`), now, tok.ID)
	}
	return tok, nil
}

// List returns every token, revoked ones too, oldest first.
func (t *Tokens) List(ctx context.Context) ([]Token, error) {
	var out []Token
	err := t.s.DB.SelectContext(ctx, &out, `SELECT id, name, role, prefix, created_at, created_by, last_used_at, revoked_at
		FROM api_tokens ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	return out, nil
}

// CountActive is how many tokens are not revoked.
func (t *Tokens) CountActive(ctx context.Context) (int, error) {
	var n int
	err := t.s.DB.GetContext(ctx, &n, `SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL`)
	return n, err
}

// Revoke revokes the active token with this id, or with this name.
func (t *Tokens) Revoke(ctx context.Context, idOrName string) (Token, error) {
	db := t.s.DB
	var tok Token
	q := `SELECT id, name, role, prefix, created_at, created_by, last_used_at, revoked_at FROM api_tokens WHERE revoked_at IS NULL AND `
	var err error
	if id, perr := strconv.ParseInt(idOrName, 10, 64); perr == nil {
		err = db.GetContext(ctx, &tok, db.Rebind(q+`id = ?`), id)
	} else {
		err = db.GetContext(ctx, &tok, db.Rebind(q+`name = ?`), idOrName)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("%w: no active token %q", ErrTokenNotFound, idOrName)
	}
	if err != nil {
		return Token{}, fmt.Errorf("revoking token: %w", err)
	}
	now := store.Now()
	if _, err := db.ExecContext(ctx, db.Rebind(`UPDATE api_tokens SET revoked_at = ? WHERE id = ?`), now, tok.ID); err != nil {
		return Token{}, fmt.Errorf("revoking token: %w", err)
	}
	tok.RevokedAt = &now
	return tok, nil
}
