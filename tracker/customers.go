package tracker

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/breachwatch/breachwatch/internal/yamlstrict"
)

type customersFile struct {
	Format    int        `yaml:"format"`
	Customers []Customer `yaml:"customers"`
}

// LoadCustomers reads the customer directory: a YAML file listing each
// tenant's country, locale and time zone. Errors name the file, line and
// field. An empty path is an empty directory.
func LoadCustomers(path string) (map[string]Customer, error) {
	if path == "" {
		return map[string]Customer{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("customer directory: %w", err)
	}
	return ParseCustomers(path, data)
}

// ParseCustomers decodes a customer directory's contents.
func ParseCustomers(name string, data []byte) (map[string]Customer, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty", name)
	}
	var f customersFile
	if err := yamlstrict.Decode(doc.Content[0], &f, nil); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	lines := yamlstrict.Lines(doc.Content[0])
	bad := func(path, format string, args ...any) error {
		return fmt.Errorf("%s: %w", name, &yamlstrict.Error{Line: lines[path], Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if f.Format != 1 {
		return nil, bad("format", "want format 1, got %d", f.Format)
	}
	out := make(map[string]Customer, len(f.Customers))
	for i, c := range f.Customers {
		p := fmt.Sprintf("customers[%d]", i)
		switch {
		case c.Tenant == "":
			return nil, bad(p+".tenant", "required")
		case out[c.Tenant].Tenant != "":
			return nil, bad(p+".tenant", "tenant %q is listed twice", c.Tenant)
		case c.Country != "" && (len(c.Country) != 2 || strings.ToUpper(c.Country) != c.Country):
			return nil, bad(p+".country", "want an ISO 3166-1 alpha-2 code such as NL, got %q", c.Country)
		}
		for j, e := range c.Emails {
			if strings.Count(e, "@") != 1 || strings.ContainsAny(e, " <>\"',;\r\n") || strings.HasPrefix(e, "@") || strings.HasSuffix(e, "@") {
				return nil, bad(fmt.Sprintf("%s.emails[%d]", p, j), "not an e-mail address")
			}
		}
		if c.TimeZone != "" {
			if _, err := time.LoadLocation(c.TimeZone); err != nil {
				return nil, bad(p+".time_zone", "unknown time zone %q", c.TimeZone)
			}
		}
		out[c.Tenant] = c
	}
	return out, nil
}
