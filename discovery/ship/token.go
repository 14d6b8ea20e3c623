package ship

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// LoadToken returns the bearer token the sensor ships with: the content of
// tokenFile, trimmed, or when tokenFile is empty the RECKON_TOKEN
// environment variable. An empty token is an error, and so is one holding
// spaces or several lines (a wrong file).
func LoadToken(tokenFile string) (string, error) {
	if tokenFile == "" {
		tok := strings.TrimSpace(os.Getenv("RECKON_TOKEN"))
		if tok == "" {
			return "", errors.New("no token to ship with: give --token-file FILE or set RECKON_TOKEN (an operator token: reckon token create --role operator)")
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			return "", errors.New("RECKON_TOKEN holds spaces or several lines: want one token")
		}
		return tok, nil
	}
	data, err := os.ReadFile(tokenFile)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("token file %s: %w", tokenFile, err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", tokenFile)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("token file %s holds spaces or several lines: want one token", tokenFile)
	}
	return tok, nil
}
