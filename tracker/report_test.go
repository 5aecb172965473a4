package tracker

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/breachwatch/breachwatch/incident"
)

func TestReportAndRegister(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	tr := newTracker(t, openStore(t, t.TempDir()), c)
	ids, err := tr.Findings(ctx, []incident.Finding{finding("cross-tenant-read", "actor.id=u-1", c.t.Add(-time.Minute), 2, "cust-nl")})
	if err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	other, _ := tr.Findings(ctx, []incident.Finding{finding("bulk-export", "actor.id=u-2", c.t, 1, "cust-br")})
	do := func(by Actor, cmd Command) {
		t.Helper()
		cmd.Incident = id
		if _, err := tr.Do(ctx, by, cmd); err != nil {
			t.Fatalf("%s: %v", cmd.Name, err)
		}
	}
	// Before any notice: the report says what it lacks.
	r := tr.Report(mustGet(t, tr, id))
	if len(r.Missing) != 4 || r.Customers != 1 || r.Accessed != 1 || r.Records != 20 {
		t.Fatalf("empty report: %+v", r)
	}
	n := completeNotice()
	n.Text["en"] = incident.NoticeText{Nature: "A customer's account read <script>alert(1)</script> contacts.", Consequences: "Spam.",
		Measures: "Blocked the account.\n\nReviewed all access.", Actions: "Be wary."}
	do(dpo, Command{Name: CmdDraft, Notice: n})
	do(engineer, Command{Name: CmdConfirm})
	// 80 hours later the authority is told, late, with reasons; the
	// customer notice is waived with the DPO's reasoning; one update.
	c.advance(80 * time.Hour)
	do(dpo, Command{Name: CmdFile, To: "gdpr/art33", Reference: "AP-2026-123", Reason: "the forensic report came in late"})
	do(dpo, Command{Name: CmdWaive, To: "gdpr/art34", Reason: "the contacts were encrypted; no risk to the customers"})
	do(dpo, Command{Name: CmdUpdate, Reason: "The account's owner confirmed the access was a test."})
	if _, err := tr.Do(ctx, engineer, Command{Incident: id, Name: CmdWaive, To: "gdpr/art33-2", Reason: "x"}); err != ErrForbidden {
		t.Errorf("an engineer waived an obligation: %v", err)
	}
	if _, err := tr.Do(ctx, dpo, Command{Incident: id, Name: CmdWaive, To: "gdpr/art33-2"}); err == nil {
		t.Error("a waiver without a reason was accepted")
	}
	inc := mustGet(t, tr, id)
	r = tr.Report(inc)
	if len(r.Missing) != 0 || !r.Late || r.Reasons != "the forensic report came in late" || len(r.Updates) != 1 ||
		r.Contact.Email != "dpo@example.com" || r.Source != "customer notice version 1 (draft)" || len(r.Deadlines) != 1 {
		t.Fatalf("report: %+v", r)
	}
	if d := tr.View(inc).Deadlines; d[1].WaivedAt == nil || inc.NextDeadline() != nil && inc.NextDeadline().ID == "gdpr/art34" {
		t.Errorf("the waived obligation is still due: %+v", d)
	}
	page, err := RenderReportHTML(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "AP-2026-123", "late", "Reasons for the delay",
		"The account&#39;s owner confirmed", "<p>Reviewed all access.</p>", "Art. 33(3)(a)"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if bytes.Contains(page, []byte("<script>")) {
		t.Error("the page carries a script tag")
	}

	// The register: both incidents, the waiver's reasoning, CSV with
	// formula-like cells defused.
	if _, err := tr.Do(ctx, engineer, Command{Incident: other[0], Name: CmdDismiss, Reason: "=HYPERLINK(\"http://evil\")"}); err != nil {
		t.Fatal(err)
	}
	reg := tr.Register()
	if len(reg) != 2 {
		t.Fatalf("register: %+v", reg)
	}
	var first RegisterEntry
	for _, e := range reg {
		if e.Incident == id {
			first = e
		}
	}
	if first.AuthorityAt == nil || first.CustomersAt != nil || !first.Late || !strings.Contains(first.NotNotifiedWhy, "gdpr/art34 not required: the contacts were encrypted") ||
		first.Effects != "Spam." {
		t.Errorf("entry: %+v", first)
	}
	var buf bytes.Buffer
	if err := WriteRegisterCSV(csv.NewWriter(&buf), reg); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "incident" || len(rows[1]) != len(registerColumns) {
		t.Fatalf("csv: %v %v", rows, err)
	}
	if !strings.Contains(buf.String(), `'dismissed: =HYPERLINK`) && !strings.Contains(strings.Join(rows[1], "|")+strings.Join(rows[2], "|"), "dismissed: =HYPERLINK") {
		t.Errorf("csv: %s", buf.String())
	}
	for _, row := range rows[1:] {
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("a formula-like cell: %q", cell)
			}
		}
	}
}

// TestReportTakesTheAuthorityWording: the report to the authority takes the
// DPO's wording for it where given (naming the controller), the English
// customer text where not.
func TestReportTakesTheAuthorityWording(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	tr := newTracker(t, openStore(t, t.TempDir()), c)
	ids, err := tr.Findings(ctx, []incident.Finding{finding("cross-tenant-read", "actor.id=u-1", c.t, 1, "cust-nl")})
	if err != nil {
		t.Fatal(err)
	}
	n := completeNotice()
	n.ForAuthority = &incident.NoticeText{Consequences: "Bookly B.V.'s customers' contacts could receive unwanted messages."}
	inc, err := tr.Do(ctx, dpo, Command{Incident: ids[0], Name: CmdDraft, Notice: n})
	if err != nil {
		t.Fatal(err)
	}
	r := tr.Report(inc)
	if r.Consequences != n.ForAuthority.Consequences || r.Nature != n.Text["en"].Nature || !strings.Contains(r.Source, "wording for the authority") {
		t.Errorf("report: consequences %q, nature %q, source %q", r.Consequences, r.Nature, r.Source)
	}
	bad := completeNotice()
	bad.ForAuthority = &incident.NoticeText{Measures: "x\u202ey"}
	if _, err := tr.Do(ctx, dpo, Command{Incident: ids[0], Name: CmdDraft, Notice: bad}); err == nil || !strings.Contains(err.Error(), "for_authority.measures") {
		t.Errorf("a bidi override in the authority text: %v", err)
	}
}
