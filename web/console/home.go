package console

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/breachwatch/breachwatch/incident"
)

// homeRow is an incident on the home page, with why it is there.
type homeRow struct {
	V    incident.View
	Why  string
	Next *incident.Deadline
}

// homeData answers "what needs me now": updates required, versions
// waiting for a DPO's approval, drafts missing elements, confirmed
// incidents owing customers a notice none was drafted for, clocks waiting
// for a determination, and the nearest legal deadlines.
type homeData struct {
	Updates, Untriaged, Approvals, Unsent, Drafts, NoNotice, Determinations, Deadlines []homeRow
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, s *session) {
	var d homeData
	for _, inc := range c.o.Incidents.List("") {
		if !inc.Status.Active() {
			if inc.Update != nil { // a closed incident that concerns more customers
				d.Updates = append(d.Updates, homeRow{V: c.o.Incidents.View(inc), Why: inc.Update.Summary()})
			}
			continue
		}
		v := c.o.Incidents.View(inc)
		if u := inc.Update; u != nil {
			d.Updates = append(d.Updates, homeRow{V: v, Why: u.Summary()})
		}
		if !inc.AuthorityUpdateSince.IsZero() {
			d.Updates = append(d.Updates, homeRow{V: v, Why: "the authority was notified before the facts changed: a phased update (GDPR Art. 33(4)) is owed"})
		}
		if inc.Status == incident.StatusOpen {
			why := "detected, not yet confirmed or dismissed"
			if !inc.Acknowledged {
				why += "; nobody has acknowledged it"
			}
			d.Untriaged = append(d.Untriaged, homeRow{V: v, Why: why})
		}
		if a := inc.LatestApproved(); a != nil && a.Version != inc.NoticeSending && inc.Status != incident.StatusOpen {
			d.Unsent = append(d.Unsent, homeRow{V: v, Why: "version " + strconv.Itoa(a.Version) + " approved by " + a.ApprovedBy + ", not sent"})
		}
		if nv := v.Notice; nv != nil && len(nv.Versions) > 0 {
			last := nv.Versions[len(nv.Versions)-1]
			switch {
			case last.ApprovedBy == "" && len(last.Missing) == 0 && last.ScopeCurrent:
				d.Approvals = append(d.Approvals, homeRow{V: v, Why: "version " + strconv.Itoa(last.Version) + " by " + last.Author})
			case last.ApprovedBy == "" && len(last.Missing) > 0:
				d.Drafts = append(d.Drafts, homeRow{V: v, Why: "version " + strconv.Itoa(last.Version) + " lacks " + strconv.Itoa(len(last.Missing)) + " required element(s)"})
			}
		} else if inc.Status == incident.StatusConfirmed && inc.NeedsNotice() {
			d.NoNotice = append(d.NoNotice, homeRow{V: v, Why: "confirmed; no notice drafted"})
		}
		for _, dl := range v.Deadlines {
			if dl.Anchor == "determination" && dl.DueAt == nil && dl.WaivedAt == nil {
				d.Determinations = append(d.Determinations, homeRow{V: v, Why: dl.What + " (" + dl.Regime + "): its clock starts with the determination"})
				break
			}
		}
		if v.NextDeadline != nil && v.NextDeadline.DueAt != nil {
			d.Deadlines = append(d.Deadlines, homeRow{V: v, Next: v.NextDeadline})
		}
	}
	slices.SortStableFunc(d.Deadlines, func(a, b homeRow) int { return a.Next.DueAt.Compare(*b.Next.DueAt) })
	d.Deadlines = d.Deadlines[:min(len(d.Deadlines), 10)]
	c.render(w, r, s, "home", http.StatusOK, ctxPage{Title: "What needs you now", Content: d})
}
