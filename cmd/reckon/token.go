package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/reckon-dev/reckon/api"
)

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want 'reckon token create|list|revoke'", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("token "+sub, flag.ContinueOnError)
	cfgPath := configFlag(fs)
	var name, role, format *string
	switch sub {
	case "create":
		name = fs.String("name", "", "a name saying who or what uses the token (required)")
		role = fs.String("role", "viewer", "viewer, operator or admin")
	case "list":
		format = fs.String("format", "table", "table or json")
	case "revoke":
	default:
		return fmt.Errorf("%w: unknown token command %q: want create, list or revoke", errUsage, sub)
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	var r api.Role
	switch sub {
	case "create":
		if *name == "" {
			return fmt.Errorf("%w: --name is required", errUsage)
		}
		var err error
		if r, err = api.ParseRole(*role); err != nil {
			return fmt.Errorf("%w: --role: %v", errUsage, err)
		}
	case "list":
		if *format != "table" && *format != "json" {
			return fmt.Errorf("%w: --format must be table or json", errUsage)
		}
	case "revoke":
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: want 'reckon token revoke ID|NAME'", errUsage)
		}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	st, err := openStore(ctx, cfg, logger, cfg.Database.AutoMigrate)
	if err != nil {
		return err
	}
	defer st.Close()
	tokens := api.NewTokens(st)
	switch sub {
	case "create":
		secret, tok, err := tokens.Create(ctx, *name, r, "cli")
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "token %d %q (%s) created; the secret above is shown this once\n", tok.ID, tok.Name, tok.Role)
	case "list":
		toks, err := tokens.List(ctx)
		if err != nil {
			return err
		}
		if *format == "json" {
			enc := json.NewEncoder(stdout)
			for _, t := range toks {
				if err := enc.Encode(t); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tPREFIX\tCREATED\tLAST USED\tSTATE")
		for _, t := range toks {
			state := "active"
			if t.RevokedAt != nil {
				state = "revoked " + t.RevokedAt.Local().Format(time.DateTime)
			}
			used := "never"
			if t.LastUsedAt != nil {
				used = t.LastUsedAt.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s…\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.Prefix, t.CreatedAt.Local().Format(time.DateTime), used, state)
		}
		return tw.Flush()
	case "revoke":
		tok, err := tokens.Revoke(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %d %q revoked\n", tok.ID, tok.Name)
	}
	return nil
}
