package console

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestSignInLockout: five wrong passwords lock that name for 15 minutes,
// not the address they came from (people behind one proxy share it); an
// address is locked after 50 failures over any names; the lock ends after
// 15 minutes; and guessing ever new names does not grow the failure record
// without bound.
func TestSignInLockout(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	var users []User
	for i := range 12 {
		users = append(users, User{Name: fmt.Sprintf("user%d", i), Role: "engineer", Hash: hash})
	}
	c, err := New(Options{Users: users, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	const proxy = "203.0.113.7"
	for range nameFailures {
		if u, _ := c.login("user0", "wrong", proxy); u != nil {
			t.Fatal("a wrong password signed in")
		}
	}
	if u, msg := c.login("user0", "right", proxy); u != nil || msg == "" {
		t.Fatal("user0 signed in after 5 failures")
	}
	if u, msg := c.login("user1", "right", proxy); u == nil {
		t.Fatalf("user1, behind the same proxy, is locked out: %q", msg)
	}
	// 50 failures from one address over ten names lock the address.
	for i := 1; i <= 10; i++ {
		for range addrFailures / 10 {
			c.login(fmt.Sprintf("user%d", i), "wrong", "198.51.100.9")
		}
	}
	if u, _ := c.login("user11", "right", "198.51.100.9"); u != nil {
		t.Error("an address with 50 failures in 15 minutes may still sign in")
	}
	if u, msg := c.login("user11", "right", proxy); u == nil {
		t.Errorf("user11 from another address is locked out: %q", msg)
	}
	now = now.Add(lockoutWindow)
	if u, msg := c.login("user0", "right", proxy); u == nil {
		t.Errorf("user0 still locked out after 15 minutes: %q", msg)
	}

	// Ever new names (unknown ones, bcrypt's full cost each: a few) leave
	// the record bounded once they are old.
	for i := range 3000 {
		c.mu.Lock()
		c.failures[fmt.Sprintf("u:guess%d", i)] = []time.Time{now}
		c.mu.Unlock()
	}
	now = now.Add(lockoutWindow)
	c.login("nobody", "x", "192.0.2.1")
	c.mu.Lock()
	n := len(c.failures)
	c.mu.Unlock()
	if n > 2 {
		t.Errorf("%d names and addresses remembered after their failures expired", n)
	}
}
