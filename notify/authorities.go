package notify

import (
	"bytes"
	_ "embed"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/breachwatch/breachwatch/incident"
)

//go:embed authorities.yaml
var authoritiesYAML []byte

// Authorities is the table of supervisory authorities by country that a
// customer's notice names for the right to complain (authorities.yaml).
type Authorities struct {
	Version string
	by      map[string]incident.Authority
}

// LoadAuthorities reads the built-in table.
func LoadAuthorities() (*Authorities, error) {
	var f struct {
		Format      int    `yaml:"format"`
		Version     string `yaml:"version"`
		Authorities []struct {
			Country string `yaml:"country"`
			Name    string `yaml:"name"`
			Website string `yaml:"website"`
		} `yaml:"authorities"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(authoritiesYAML))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("authorities.yaml: %w", err)
	}
	if f.Format != 1 || f.Version == "" {
		return nil, fmt.Errorf("authorities.yaml: want format 1 and a version")
	}
	a := &Authorities{Version: f.Version, by: map[string]incident.Authority{}}
	for i, e := range f.Authorities {
		if len(e.Country) != 2 || e.Name == "" {
			return nil, fmt.Errorf("authorities.yaml: entry %d: want a two-letter country and a name", i)
		}
		if _, dup := a.by[e.Country]; dup {
			return nil, fmt.Errorf("authorities.yaml: %s is listed twice", e.Country)
		}
		a.by[e.Country] = incident.Authority{Name: e.Name, Website: e.Website}
	}
	return a, nil
}

// For returns the authority of a customer's country (ISO 3166-1 alpha-2),
// or false when the table has none: the notice's own authority is named
// then.
func (a *Authorities) For(country string) (incident.Authority, bool) {
	if a == nil {
		return incident.Authority{}, false
	}
	au, ok := a.by[country]
	return au, ok
}

// Countries lists the countries the table covers.
func (a *Authorities) Countries() []string {
	out := make([]string, 0, len(a.by))
	for c := range a.by {
		out = append(out, c)
	}
	return out
}
