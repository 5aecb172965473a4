package tracker

import (
	"github.com/rickar/cal/v2"
	calat "github.com/rickar/cal/v2/at"
	"github.com/rickar/cal/v2/be"
	"github.com/rickar/cal/v2/br"
	"github.com/rickar/cal/v2/ch"
	"github.com/rickar/cal/v2/de"
	"github.com/rickar/cal/v2/dk"
	"github.com/rickar/cal/v2/es"
	"github.com/rickar/cal/v2/fi"
	"github.com/rickar/cal/v2/fr"
	"github.com/rickar/cal/v2/gb"
	"github.com/rickar/cal/v2/ie"
	"github.com/rickar/cal/v2/it"
	"github.com/rickar/cal/v2/nl"
	"github.com/rickar/cal/v2/no"
	"github.com/rickar/cal/v2/pl"
	"github.com/rickar/cal/v2/pt"
	"github.com/rickar/cal/v2/se"
	"github.com/rickar/cal/v2/us"
)

// holidayLibrary is the national holiday lists a regime calendar can take
// from github.com/rickar/cal/v2 (`library: br`): maintained rules for
// Easter-based and observed holidays, instead of hand-written ones. The
// key is the package name (ISO 3166-1 alpha-2, lower case).
var holidayLibrary = map[string][]*cal.Holiday{
	"at": calat.Holidays, "be": be.Holidays, "br": br.Holidays, "ch": ch.Holidays, "de": de.Holidays, "dk": dk.Holidays,
	"es": es.Holidays, "fi": fi.Holidays, "fr": fr.Holidays, "gb": gb.Holidays, "ie": ie.Holidays, "it": it.Holidays,
	"nl": nl.Holidays, "no": no.Holidays, "pl": pl.Holidays, "pt": pt.Holidays, "se": se.Holidays, "us": us.Holidays,
}

// libraryHolidays adds the library calendar's holidays of year y to out,
// on their observed dates.
func (c *Calendar) libraryHolidays(y int, out map[date]string) {
	for _, h := range c.lib {
		if _, obs := h.Calc(y); !obs.IsZero() {
			out[dateOf(obs)] = h.Name
		}
	}
}
