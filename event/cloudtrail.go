package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The CloudTrail mapping. Every change has ID = eventID (the 2nd, 3rd… change
// of one record: eventID#2, eventID#3…), Time = eventTime, Source
// "cloudtrail", Resource.Provider "aws", Resource.Region = awsRegion, an
// Actor from userIdentity (id: arn, principalId, invokedBy or "unknown";
// Root, IAMUser, FederatedUser and IdentityCenterUser are employees, all
// others services), and Extra {"cloudtrail":{eventName, eventSource,
// sourceIPAddress, userAgent, recipientAccountId}}. ARNs are built in the
// aws partition with recipientAccountId (else userIdentity.accountId).
//
//	S3 PutBucketAcl                  bucket      public_access        true if a grant, grant header or canned ACL opens it to AllUsers/AuthenticatedUsers
//	S3 PutBucketPolicy               bucket      public_access        true if an Allow statement for "*" has no Condition
//	                                             shared_with          sorted ids of the other accounts (not recipientAccountId) that Allow
//	                                                                  statements without a Condition name as principals (account id or
//	                                                                  IAM/STS ARN); [] when none, so a policy replaced closes a share
//	S3 DeleteBucketPolicy            bucket      public_access        false
//	                                             shared_with          []
//	S3 Put(Bucket)PublicAccessBlock  bucket      public_access_block  true if all four blocks are on (no bucketName: account-wide, no change)
//	S3 Delete(Bucket)PublicAccessBlock bucket    public_access_block  false
//	S3 Put/DeleteBucketEncryption    bucket      encryption_at_rest   true / false
//	RDS Modify/CreateDBInstance, RestoreDBInstanceFromDBSnapshot, RestoreDBInstanceToPointInTime
//	                                 database    public_access        publiclyAccessible, when given
//	RDS ModifyDB(Cluster)SnapshotAttribute (restore)
//	                                 snapshot    shared_with          sorted added values, or before = removed, after []
//	EC2 ModifySnapshotAttribute      snapshot    shared_with          createVolumePermission add/remove, as above
//	EC2 ModifyImageAttribute         image       shared_with          launchPermission add/remove, as above
//	EC2 AuthorizeSecurityGroupIngress firewall   public_ingress       after {"cidr","protocol","from_port","to_port"}, per 0.0.0.0/0 or ::/0 range
//	EC2 RevokeSecurityGroupIngress   firewall    public_ingress       before that object, after null
//	EC2 Create/ReplaceNetworkAclEntry firewall   public_ingress       inbound allow from 0.0.0.0/0 or ::/0
//	EC2 CreateFlowLogs               log_sink    flow_logs            true per flow log created: id the flow log (responseElements
//	                                                                  flowLogIdSet), store the VPC/subnet/ENI it watches (paired in the
//	                                                                  request's order); no ids in the response: id = store = each resource
//	EC2 DeleteFlowLogs               log_sink    flow_logs            false per flow log: id the flow log, no store given (StoreDefaulted:
//	                                                                  detection ties it to the store its creation named)
//	CloudTrail StopLogging, DeleteTrail / StartLogging
//	                                 log_sink    audit_logging        false / true
//	CloudTrail UpdateTrail           log_sink    audit_logging_scope  "narrowed" when multi-region or global events are turned off
//	CloudTrail PutEventSelectors     log_sink    audit_logging_scope  "narrowed" or "full"
//	KMS DisableKey, ScheduleKeyDeletion, EnableKey, CancelKeyDeletion
//	                                 key         key_state            "Disabled", "PendingDeletion", "Enabled", "Disabled"
//	Lambda AddPermission             function    public_access        true for principal "*" without source or organization condition
//	Lambda Create/UpdateFunctionUrlConfig function public_access      authType NONE: true, AWS_IAM: false
//	Redshift Modify/CreateCluster    database    public_access        publiclyAccessible, when given
//	Route 53 Resolver DeleteResolverQueryLogConfig, DisassociateResolverQueryLogConfig / AssociateResolverQueryLogConfig
//	                                 log_sink    audit_logging        false / true; id arn:aws:route53resolver:REGION:ACCOUNT:
//	                                                                  resolver-query-log-config/rqlc-…, store the rqlc-… id
//
// Protocols are named ("6" → "tcp", "17" → "udp", "1" → "icmp", "58" →
// "icmpv6", "-1" → "all" with ports 0-65535); a missing port is 0 (from) or
// 65535 (to).
//
// The forms CloudTrail data is accepted in (log files, JSON arrays, single
// records, EventBridge events), their limits and how a bad record in a
// file is refused alone: see Decoder.ConfigRecords (event/ctfile.go).

// sourceCloudTrail is the source of the changes mapped from CloudTrail.
const sourceCloudTrail = "cloudtrail"

// appendEventBridge maps the CloudTrail record in an EventBridge event;
// path prefixes the names of its fields in errors ("" or "[3].").
func (d Decoder) appendEventBridge(dst []ConfigChange, data []byte, path string) ([]ConfigChange, error) {
	var ev struct {
		DetailType *string         `json:"detail-type"`
		Detail     json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return dst, jsonErr(path, err)
	}
	switch {
	case ev.DetailType == nil || *ev.DetailType == "":
		return dst, missing(path + "detail-type")
	case !strings.HasSuffix(*ev.DetailType, " via CloudTrail"):
		return dst, badValue(path+"detail-type", `want an event carrying a CloudTrail record, such as "AWS API Call via CloudTrail"; got `+quote(*ev.DetailType))
	}
	return d.appendRecord(dst, ev.Detail, path+"detail.")
}

// ctRecord is the part of a CloudTrail record the mapping reads.
type ctRecord struct {
	EventVersion       string          `json:"eventVersion"`
	UserIdentity       *ctIdentity     `json:"userIdentity"`
	EventTime          string          `json:"eventTime"`
	EventSource        string          `json:"eventSource"`
	EventName          string          `json:"eventName"`
	AWSRegion          string          `json:"awsRegion"`
	SourceIPAddress    string          `json:"sourceIPAddress"`
	UserAgent          string          `json:"userAgent"`
	ErrorCode          string          `json:"errorCode"`
	RequestParameters  json.RawMessage `json:"requestParameters"`
	ResponseElements   json.RawMessage `json:"responseElements"`
	EventID            string          `json:"eventID"`
	RecipientAccountID string          `json:"recipientAccountId"`
}

type ctIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
	InvokedBy   string `json:"invokedBy"`
}

// appendRecord maps one CloudTrail record; path prefixes the names of its
// fields in errors ("", "detail." or "Records[3].").
func (d Decoder) appendRecord(dst []ConfigChange, raw json.RawMessage, path string) ([]ConfigChange, error) {
	if len(raw) == 0 || raw[0] != '{' {
		field := strings.TrimSuffix(path, ".")
		if len(raw) == 0 || string(raw) == "null" {
			return dst, missing(field)
		}
		return dst, &Error{Kind: KindType, Field: field, Msg: "want a CloudTrail record (an object), got " + rawKind(raw)}
	}
	m := ctMapper{dec: d, path: path, out: dst, n0: len(dst)}
	if err := json.Unmarshal(raw, &m.rec); err != nil {
		return dst, jsonErr(path, err)
	}
	if err := m.run(); err != nil {
		clear(m.out[m.n0:])
		return m.out[:m.n0], err
	}
	return m.out, nil
}

// ctMapper maps one CloudTrail record to changes.
type ctMapper struct {
	dec  Decoder
	rec  ctRecord
	path string
	time time.Time
	out  []ConfigChange
	n0   int // len(out) before this record

	req, resp       jnode // requestParameters and responseElements, once parsed
	parsed          bool
	actor           *Actor
	extra           json.RawMessage
	cachedAccount   string
	cachedAccountOK bool
}

func (m *ctMapper) run() error {
	r := &m.rec
	if r.EventTime == "" {
		return missing(m.path + "eventTime")
	}
	t, ok := ParseTime(r.EventTime)
	if !ok {
		return badValue(m.path+"eventTime", "want an RFC 3339 timestamp such as 2026-11-20T09:15:02Z; got "+quote(r.EventTime))
	}
	if err := checkTime(m.path+"eventTime", t); err != nil {
		return err
	}
	if err := m.dec.future(m.path+"eventTime", t); err != nil {
		return err
	}
	m.time = t
	if r.ErrorCode != "" {
		return nil // a failed call changed nothing
	}
	switch r.EventSource {
	case "s3.amazonaws.com":
		return m.s3()
	case "rds.amazonaws.com":
		return m.rds()
	case "ec2.amazonaws.com":
		return m.ec2()
	case "cloudtrail.amazonaws.com":
		return m.cloudtrail()
	case "kms.amazonaws.com":
		return m.kms()
	case "lambda.amazonaws.com":
		return m.lambda()
	case "redshift.amazonaws.com":
		return m.redshift()
	case "route53resolver.amazonaws.com":
		return m.resolver()
	}
	return nil
}

// params parses requestParameters and responseElements (only for the
// calls that are mapped).
func (m *ctMapper) params() (req, resp jnode, err error) {
	if !m.parsed {
		if m.req, err = parseNode(m.rec.RequestParameters, m.path+"requestParameters"); err != nil {
			return req, resp, err
		}
		if m.resp, err = parseNode(m.rec.ResponseElements, m.path+"responseElements"); err != nil {
			return req, resp, err
		}
		m.parsed = true
	}
	return m.req, m.resp, nil
}

func (m *ctMapper) region() (string, error) {
	if m.rec.AWSRegion == "" {
		return "", missing(m.path + "awsRegion")
	}
	return m.rec.AWSRegion, nil
}

// account is the account whose resources changed: recipientAccountId, else
// the caller's account.
func (m *ctMapper) account() (string, error) {
	if !m.cachedAccountOK {
		m.cachedAccount = m.rec.RecipientAccountID
		if m.cachedAccount == "" && m.rec.UserIdentity != nil {
			m.cachedAccount = m.rec.UserIdentity.AccountID
		}
		m.cachedAccountOK = true
	}
	if m.cachedAccount == "" {
		return "", missing(m.path + "recipientAccountId")
	}
	return m.cachedAccount, nil
}

// arn builds "arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE"; the region and the
// account are left empty when !regional / !inAccount.
func (m *ctMapper) arn(service string, regional, inAccount bool, resource string) (string, error) {
	var region, account string
	var err error
	if regional {
		if region, err = m.region(); err != nil {
			return "", err
		}
	}
	if inAccount {
		if account, err = m.account(); err != nil {
			return "", err
		}
	}
	return "arn:aws:" + service + ":" + region + ":" + account + ":" + resource, nil
}

// ctActor maps userIdentity to the actor.
func ctActor(u *ctIdentity) (a Actor, field string) {
	a.ID, field = "unknown", "userIdentity"
	if u == nil {
		return Actor{ID: "unknown", Type: ActorService}, field
	}
	switch {
	case u.ARN != "":
		a.ID, field = u.ARN, "userIdentity.arn"
	case u.PrincipalID != "":
		a.ID, field = u.PrincipalID, "userIdentity.principalId"
	case u.InvokedBy != "":
		a.ID, field = u.InvokedBy, "userIdentity.invokedBy"
	}
	switch u.Type {
	case "Root", "IAMUser", "FederatedUser", "IdentityCenterUser":
		a.Type = ActorEmployee
	default: // AWSService, AssumedRole, and whatever else
		a.Type = ActorService
	}
	return a, field
}

// ctExtra is {"cloudtrail":{...}} with the record's call and caller.
func ctExtra(r *ctRecord) json.RawMessage {
	b := append(make([]byte, 0, 128), `{"cloudtrail":{`...)
	first := true
	for _, kv := range [...][2]string{
		{"eventName", r.EventName}, {"eventSource", r.EventSource}, {"sourceIPAddress", r.SourceIPAddress},
		{"userAgent", r.UserAgent}, {"recipientAccountId", r.RecipientAccountID},
	} {
		if kv[1] == "" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, kv[0]...)
		b = append(b, `":`...)
		b = appendString(b, kv[1])
	}
	return append(b, "}}"...)
}

// emit appends one change to resource res, whose id and store come from
// the request field blame.
func (m *ctMapper) emit(res ConfigResource, blame, setting string, before, after json.RawMessage) error {
	id := m.rec.EventID
	if id == "" {
		return missing(m.path + "eventID")
	}
	if k := len(m.out) - m.n0; k > 0 {
		id += "#" + strconv.Itoa(k+1)
	}
	if len(id) > MaxIDBytes {
		return badValue(m.path+"eventID", "longer than "+strconv.Itoa(MaxIDBytes)+" bytes")
	}
	if len(res.ID) > MaxIDBytes || len(res.Store) > MaxIDBytes {
		return badValue(m.path+blame, "makes a resource id longer than "+strconv.Itoa(MaxIDBytes)+" bytes")
	}
	if m.actor == nil {
		a, field := ctActor(m.rec.UserIdentity)
		if len(a.ID) > MaxIDBytes {
			return badValue(m.path+field, "longer than "+strconv.Itoa(MaxIDBytes)+" bytes")
		}
		m.actor = &a
		m.extra = ctExtra(&m.rec)
	}
	actor := *m.actor
	res.Provider, res.Region = "aws", m.rec.AWSRegion
	c := ConfigChange{
		ID: id, Time: m.time, Resource: res, Setting: setting, Before: before, After: after,
		Actor: &actor, Source: sourceCloudTrail, Extra: m.extra,
	}
	if err := c.Validate(); err != nil {
		// A mapping bug: the input was checked above.
		var e *Error
		kind := KindValue
		if errors.As(err, &e) {
			kind = e.Kind
		}
		return &Error{Kind: kind, Field: strings.TrimSuffix(m.path, "."), Msg: "mapped to an invalid change: " + err.Error()}
	}
	m.out = append(m.out, c)
	return nil
}

// firstOf reads the first of two string members that is present; when
// neither is, the error names the first.
func firstOf(obj jnode, key, alt string) (jnode, string, error) {
	for _, k := range [...]string{key, alt} {
		n := obj.get(k)
		s, err := n.str()
		if err != nil || s != "" {
			return n, s, err
		}
	}
	n := obj.get(key)
	return n, "", missing(n.path)
}

// required reads a string request parameter that must be present.
func required(n jnode) (string, error) {
	s, err := n.str()
	if err == nil && s == "" {
		err = missing(n.path)
	}
	return s, err
}

func rawBool(v bool) json.RawMessage {
	if v {
		return json.RawMessage("true")
	}
	return json.RawMessage("false")
}

func rawString(s string) json.RawMessage { return appendString(nil, s) }

// rawSet is the sorted, deduplicated list of values.
func rawSet(values []string) json.RawMessage {
	values = slices.Clone(values)
	slices.Sort(values)
	return appendStrings(nil, slices.Compact(values))
}

// afterLast is what follows the last sep in s, or s.
func afterLast(s, sep string) string {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[i+len(sep):]
	}
	return s
}

// ---- S3

const (
	allUsersURI  = "acs.amazonaws.com/groups/global/AllUsers"
	authUsersURI = "acs.amazonaws.com/groups/global/AuthenticatedUsers"
)

func publicGroup(s string) bool {
	return strings.Contains(s, allUsersURI) || strings.Contains(s, authUsersURI)
}

func (m *ctMapper) s3() error {
	var setting string
	switch m.rec.EventName {
	case "PutBucketAcl", "PutBucketPolicy", "DeleteBucketPolicy":
		setting = "public_access"
	case "PutBucketPublicAccessBlock", "PutPublicAccessBlock", "DeleteBucketPublicAccessBlock", "DeletePublicAccessBlock":
		setting = "public_access_block"
	case "PutBucketEncryption", "DeleteBucketEncryption":
		setting = "encryption_at_rest"
	default:
		return nil
	}
	req, _, err := m.params()
	if err != nil {
		return err
	}
	bucketField := req.get("bucketName")
	if m.rec.EventName == "PutPublicAccessBlock" || m.rec.EventName == "DeletePublicAccessBlock" {
		// Without a bucket these set the account's block: not a bucket change.
		if s, err := bucketField.str(); err != nil || s == "" {
			return err
		}
	}
	bucket, err := required(bucketField)
	if err != nil {
		return err
	}
	var after bool
	var accounts []string // PutBucketPolicy: the accounts it grants access to
	switch m.rec.EventName {
	case "PutBucketAcl":
		after, err = publicACL(req)
	case "PutBucketPolicy":
		after, accounts, err = policyGrants(req.get("bucketPolicy"))
	case "PutBucketPublicAccessBlock", "PutPublicAccessBlock":
		after, err = blocksAll(req.get("PublicAccessBlockConfiguration"))
	case "PutBucketEncryption":
		after = true
	}
	if err != nil {
		return err
	}
	res := ConfigResource{ID: "arn:aws:s3:::" + bucket, Type: "bucket", Store: "s3://" + bucket}
	blame := bucketField.path[len(m.path):]
	if err := m.emit(res, blame, setting, nil, rawBool(after)); err != nil {
		return err
	}
	switch m.rec.EventName {
	case "PutBucketPolicy":
		// A policy replaces the one before: without a foreign account in
		// it, the bucket is shared with nobody (any share window closes).
		var foreign []string
		if len(accounts) > 0 {
			owner, err := m.account()
			if err != nil {
				return err
			}
			for _, a := range accounts {
				if a != owner {
					foreign = append(foreign, a)
				}
			}
		}
		return m.emit(res, blame, "shared_with", nil, rawSet(foreign))
	case "DeleteBucketPolicy":
		return m.emit(res, blame, "shared_with", nil, json.RawMessage("[]"))
	}
	return nil
}

// publicACL tells whether a PutBucketAcl request grants anything to all
// (or all authenticated) users, in its body, grant headers or canned ACL.
func publicACL(req jnode) (bool, error) {
	grants, err := req.get("AccessControlPolicy").get("AccessControlList").get("Grant").list()
	if err != nil {
		return false, err
	}
	for _, g := range grants {
		uri, err := g.get("Grantee").get("URI").str()
		if err != nil {
			return false, err
		}
		if publicGroup(uri) {
			return true, nil
		}
	}
	for _, h := range [...]string{"x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp", "x-amz-grant-write-acp", "x-amz-grant-full-control"} {
		values, err := req.get(h).strs()
		if err != nil {
			return false, err
		}
		if slices.ContainsFunc(values, publicGroup) {
			return true, nil
		}
	}
	canned, err := req.get("x-amz-acl").strs()
	if err != nil {
		return false, err
	}
	for _, c := range canned {
		switch c {
		case "public-read", "public-read-write", "authenticated-read":
			return true, nil
		}
	}
	return false, nil
}

// policyGrants reads a bucket policy (an object, or a JSON string): public
// is whether an Allow statement without a Condition lets anyone in; and
// accounts are the AWS accounts that such statements name as principals
// (by account id or by an IAM or STS ARN in the account), sorted, each
// once.
func policyGrants(pol jnode) (public bool, accounts []string, err error) {
	if pol.err != nil {
		return false, nil, pol.err
	}
	switch v := pol.v.(type) {
	case nil:
		return false, nil, missing(pol.path)
	case string:
		n, err := parseNode(json.RawMessage(v), pol.path)
		if err != nil {
			return false, nil, badValue(pol.path, "not a JSON policy document")
		}
		pol = n
	}
	stmts, err := pol.get("Statement").list()
	if err != nil {
		return false, nil, err
	}
	for _, s := range stmts {
		effect, err := s.get("Effect").str()
		if err != nil {
			return false, nil, err
		}
		cond := s.get("Condition")
		if cond.err != nil {
			return false, nil, cond.err
		}
		if effect != "Allow" || conditional(cond.v) {
			continue
		}
		principal := s.get("Principal")
		public = public || anyone(principal)
		accounts = append(accounts, principalAccounts(principal)...)
	}
	slices.Sort(accounts)
	return public, slices.Compact(accounts), nil
}

// principalAccounts lists the accounts a policy principal names: "AWS"
// values (or a bare value) that are 12-digit account ids or ARNs of IAM or
// STS principals (arn:aws:iam::123456789012:root, …:role/x). "*",
// services and canonical users name no account.
func principalAccounts(p jnode) []string {
	var values []any
	add := func(v any) {
		switch v := v.(type) {
		case string:
			values = append(values, v)
		case []any:
			values = append(values, v...)
		}
	}
	if m, ok := p.v.(map[string]any); ok {
		add(m["AWS"])
	} else {
		add(p.v)
	}
	var out []string
	for _, v := range values {
		if s, ok := v.(string); ok {
			if a, ok := accountOf(s); ok {
				out = append(out, a)
			}
		}
	}
	return out
}

// accountOf reads the account of a principal: "123456789012", or
// "arn:PARTITION:iam::123456789012:…" / "arn:PARTITION:sts::123456789012:…".
func accountOf(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "arn:") {
		parts := strings.SplitN(s, ":", 6)
		if len(parts) < 6 || parts[2] != "iam" && parts[2] != "sts" {
			return "", false
		}
		s = parts[4]
	}
	if len(s) != 12 {
		return "", false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return s, true
}

// anyone tells whether a policy principal is everybody: "*", {"AWS":"*"}
// or a list holding "*".
func anyone(p jnode) bool {
	star := func(v any) bool {
		switch v := v.(type) {
		case string:
			return v == "*"
		case []any:
			return slices.Contains(v, any("*"))
		}
		return false
	}
	if m, ok := p.v.(map[string]any); ok {
		return star(m["AWS"])
	}
	return star(p.v)
}

func conditional(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case map[string]any:
		return len(v) > 0
	}
	return true
}

// blocksAll tells whether a public access block configuration turns on all
// four blocks.
func blocksAll(cfg jnode) (bool, error) {
	all := true
	for _, k := range [...]string{"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"} {
		v, _, err := cfg.get(k).boolean()
		if err != nil {
			return false, err
		}
		all = all && v
	}
	return all, nil
}

// ---- RDS

func (m *ctMapper) rds() error {
	switch m.rec.EventName {
	case "ModifyDBInstance", "CreateDBInstance", "RestoreDBInstanceFromDBSnapshot":
		return m.rdsInstance("dBInstanceIdentifier", "dBInstanceArn", "db:")
	case "RestoreDBInstanceToPointInTime":
		return m.rdsInstance("targetDBInstanceIdentifier", "dBInstanceArn", "db:")
	case "ModifyDBCluster", "CreateDBCluster":
		// Multi-AZ DB clusters take publiclyAccessible (Aurora clusters do not).
		return m.rdsInstance("dBClusterIdentifier", "dBClusterArn", "cluster:")
	case "ModifyDBSnapshotAttribute":
		return m.rdsSnapshot("dBSnapshotIdentifier", "snapshot:")
	case "ModifyDBClusterSnapshotAttribute":
		return m.rdsSnapshot("dBClusterSnapshotIdentifier", "cluster-snapshot:")
	}
	return nil
}

// rdsInstance maps a DB instance or cluster made public (or private).
func (m *ctMapper) rdsInstance(idKey, arnKey, arnType string) error {
	req, resp, err := m.params()
	if err != nil {
		return err
	}
	public, present, err := req.get("publiclyAccessible").boolean()
	if err != nil || !present {
		return err
	}
	idField := req.get(idKey)
	id, err := required(idField)
	if err != nil {
		return err
	}
	arn, err := resp.get(arnKey).str()
	if err != nil {
		return err
	}
	if arn == "" {
		if arn, err = m.arn("rds", true, true, arnType+id); err != nil {
			return err
		}
	}
	res := ConfigResource{ID: arn, Type: "database", Store: id}
	return m.emit(res, idField.path[len(m.path):], "public_access", nil, rawBool(public))
}

func (m *ctMapper) rdsSnapshot(idKey, arnType string) error {
	req, _, err := m.params()
	if err != nil {
		return err
	}
	if attr, err := req.get("attributeName").str(); err != nil || attr != "restore" {
		return err
	}
	added, err := req.get("valuesToAdd").strs()
	if err != nil {
		return err
	}
	removed, err := req.get("valuesToRemove").strs()
	if err != nil || len(added) == 0 && len(removed) == 0 {
		return err
	}
	idField := req.get(idKey)
	id, err := required(idField)
	if err != nil {
		return err
	}
	arn := id
	if strings.HasPrefix(id, "arn:") {
		id = afterLast(id, ":")
	} else if arn, err = m.arn("rds", true, true, arnType+id); err != nil {
		return err
	}
	res := ConfigResource{ID: arn, Type: "snapshot", Store: id}
	return m.shared(res, idField.path[len(m.path):], added, removed)
}

// shared emits the shared_with change of a permission change.
func (m *ctMapper) shared(res ConfigResource, blame string, added, removed []string) error {
	switch {
	case len(added) > 0:
		return m.emit(res, blame, "shared_with", nil, rawSet(added))
	case len(removed) > 0:
		return m.emit(res, blame, "shared_with", rawSet(removed), json.RawMessage("[]"))
	}
	return nil
}

// ---- EC2

func (m *ctMapper) ec2() error {
	switch m.rec.EventName {
	case "ModifySnapshotAttribute":
		return m.ec2Sharing("snapshotId", "createVolumePermission", "snapshot")
	case "ModifyImageAttribute":
		return m.ec2Sharing("imageId", "launchPermission", "image")
	case "AuthorizeSecurityGroupIngress":
		return m.securityGroup(false)
	case "RevokeSecurityGroupIngress":
		return m.securityGroup(true)
	case "CreateNetworkAclEntry", "ReplaceNetworkAclEntry":
		return m.networkACL()
	case "DeleteFlowLogs":
		return m.flowLogs(false)
	case "CreateFlowLogs":
		return m.flowLogs(true)
	}
	return nil
}

// ec2Sharing maps a change to who may use a snapshot or an image: items
// such as {"group":"all"} or {"userId":"123456789012"} (organization and
// organizational-unit ARNs count as values too).
func (m *ctMapper) ec2Sharing(idKey, permKey, typ string) error {
	req, _, err := m.params()
	if err != nil {
		return err
	}
	perm := req.get(permKey)
	added, err := permissionValues(perm.get("add"))
	if err != nil {
		return err
	}
	removed, err := permissionValues(perm.get("remove"))
	if err != nil || len(added) == 0 && len(removed) == 0 {
		return err
	}
	idField := req.get(idKey)
	id, err := required(idField)
	if err != nil {
		return err
	}
	var arn string
	if typ == "image" {
		arn, err = m.arn("ec2", true, false, "image/"+id)
	} else {
		arn, err = m.arn("ec2", true, true, "snapshot/"+id)
	}
	if err != nil {
		return err
	}
	res := ConfigResource{ID: arn, Type: typ, Store: id}
	return m.shared(res, idField.path[len(m.path):], added, removed)
}

func permissionValues(n jnode) ([]string, error) {
	items, err := n.items()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, it := range items {
		for _, k := range [...]string{"group", "userId", "organizationArn", "organizationalUnitArn"} {
			v, err := it.get(k).str()
			if err != nil {
				return nil, err
			}
			if v != "" {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// ingress is one rule that admits traffic from a CIDR.
type ingress struct {
	cidr     netip.Prefix
	protocol string
	from, to int64
}

func (g ingress) raw() json.RawMessage {
	b := append(make([]byte, 0, 80), `{"cidr":`...)
	b = appendString(b, g.cidr.String())
	b = append(b, `,"protocol":`...)
	b = appendString(b, g.protocol)
	b = append(b, `,"from_port":`...)
	b = strconv.AppendInt(b, g.from, 10)
	b = append(b, `,"to_port":`...)
	b = strconv.AppendInt(b, g.to, 10)
	return append(b, '}')
}

// publicCIDR parses a CIDR that admits every address ("0.0.0.0/0", "::/0").
func publicCIDR(s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil || p.Bits() != 0 {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

// protocolName names an IP protocol: "tcp", "udp", "icmp", "icmpv6", "all"
// for -1, or the value given.
func protocolName(p string) string {
	switch strings.ToLower(p) {
	case "-1", "all":
		return "all"
	case "6", "tcp":
		return "tcp"
	case "17", "udp":
		return "udp"
	case "1", "icmp":
		return "icmp"
	case "58", "icmpv6":
		return "icmpv6"
	}
	return p
}

// newIngress builds the rule from the protocol and the port nodes; a
// missing port means 0 (from) or 65535 (to), and protocol "all" covers all.
func newIngress(cidr netip.Prefix, proto jnode, from, to jnode) (ingress, error) {
	p, err := proto.strOrInt()
	if err != nil {
		return ingress{}, err
	}
	if p == "" {
		return ingress{}, missing(proto.path)
	}
	g := ingress{cidr: cidr, protocol: protocolName(p), from: 0, to: 65535}
	if g.protocol == "all" {
		return g, nil
	}
	if v, ok, err := from.integer(); err != nil {
		return g, err
	} else if ok {
		g.from = v
	}
	if v, ok, err := to.integer(); err != nil {
		return g, err
	} else if ok {
		g.to = v
	}
	return g, nil
}

// securityGroup maps Authorize/RevokeSecurityGroupIngress: one change per
// public range, in the request's order. Both request shapes are read: the
// ipPermissions items, and the legacy top-level cidrIp.
func (m *ctMapper) securityGroup(revoke bool) error {
	req, _, err := m.params()
	if err != nil {
		return err
	}
	var rules []ingress
	perms, err := req.get("ipPermissions").items()
	if err != nil {
		return err
	}
	for _, p := range perms {
		for _, r := range [...][2]string{{"ipRanges", "cidrIp"}, {"ipv6Ranges", "cidrIpv6"}} {
			ranges, err := p.get(r[0]).items()
			if err != nil {
				return err
			}
			for _, rg := range ranges {
				s, err := rg.get(r[1]).str()
				if err != nil {
					return err
				}
				if cidr, ok := publicCIDR(s); ok {
					g, err := newIngress(cidr, p.get("ipProtocol"), p.get("fromPort"), p.get("toPort"))
					if err != nil {
						return err
					}
					rules = append(rules, g)
				}
			}
		}
	}
	for _, k := range [...]string{"cidrIp", "cidrIpv6"} {
		s, err := req.get(k).str()
		if err != nil {
			return err
		}
		if cidr, ok := publicCIDR(s); ok {
			g, err := newIngress(cidr, req.get("ipProtocol"), req.get("fromPort"), req.get("toPort"))
			if err != nil {
				return err
			}
			rules = append(rules, g)
		}
	}
	if len(rules) == 0 {
		return nil
	}
	idField, id, err := firstOf(req, "groupId", "groupName")
	if err != nil {
		return err
	}
	arn, err := m.arn("ec2", true, true, "security-group/"+id)
	if err != nil {
		return err
	}
	res := ConfigResource{ID: arn, Type: "firewall", Store: id}
	for _, g := range rules {
		before, after := json.RawMessage(nil), g.raw()
		if revoke {
			before, after = after, json.RawMessage("null")
		}
		if err := m.emit(res, idField.path[len(m.path):], "public_ingress", before, after); err != nil {
			return err
		}
	}
	return nil
}

// networkACL maps an inbound allow rule from everywhere.
func (m *ctMapper) networkACL() error {
	req, _, err := m.params()
	if err != nil {
		return err
	}
	egress, _, err := req.get("egress").boolean()
	if err != nil || egress {
		return err
	}
	action, err := req.get("ruleAction").str()
	if err != nil || !strings.EqualFold(action, "allow") {
		return err
	}
	var cidr netip.Prefix
	public := false
	for _, k := range [...]string{"cidrBlock", "ipv6CidrBlock"} {
		s, err := req.get(k).str()
		if err != nil {
			return err
		}
		if c, ok := publicCIDR(s); ok && !public {
			cidr, public = c, true
		}
	}
	if !public {
		return nil
	}
	ports := req.get("portRange")
	g, err := newIngress(cidr, req.get("aclProtocol"), ports.get("from"), ports.get("to"))
	if err != nil {
		return err
	}
	idField := req.get("networkAclId")
	id, err := required(idField)
	if err != nil {
		return err
	}
	arn, err := m.arn("ec2", true, true, "network-acl/"+id)
	if err != nil {
		return err
	}
	res := ConfigResource{ID: arn, Type: "firewall", Store: id}
	return m.emit(res, idField.path[len(m.path):], "public_ingress", nil, g.raw())
}

// flowLogs maps DeleteFlowLogs and CreateFlowLogs. The ids are read from
// DeleteFlowLogsRequest.FlowLogId / CreateFlowLogsRequest.ResourceId as
// CloudTrail logs them ({"content":"fl-…","tag":1}, or a list of those), or
// from flowLogIds / resourceIds (a string or a list of strings).
//
// DeleteFlowLogs: one change per flow log, on the flow log's id, naming no
// store (detection ties it to the store its creation named).
// CreateFlowLogs: one change per flow log created, on its id
// (CreateFlowLogsResponse.flowLogIdSet) with the resource it monitors as
// store, paired in the request's order (resources listed as unsuccessful
// left out); when the response names no ids (or they cannot be paired),
// one change per resource, on the resource itself.
func (m *ctMapper) flowLogs(create bool) error {
	req, resp, err := m.params()
	if err != nil {
		return err
	}
	wrapper, key, alt := "DeleteFlowLogsRequest", "FlowLogId", "flowLogIds"
	if create {
		wrapper, key, alt = "CreateFlowLogsRequest", "ResourceId", "resourceIds"
	}
	field := req.get(wrapper).get(key)
	ids, err := idValues(field)
	if err == nil && len(ids) == 0 {
		field = req.get(alt)
		ids, err = idValues(field)
	}
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return missing(req.get(wrapper).get(key).path)
	}
	blame := field.path[len(m.path):]
	if !create {
		for _, id := range ids {
			res := ConfigResource{ID: id, Type: "log_sink", Store: id}
			if err := m.emit(res, blame, "flow_logs", nil, rawBool(false)); err != nil {
				return err
			}
			m.out[len(m.out)-1].StoreDefaulted = true
		}
		return nil
	}
	created, failed, err := createdFlowLogs(resp)
	if err != nil {
		return err
	}
	resources := slices.DeleteFunc(ids, func(id string) bool { return slices.Contains(failed, id) })
	if len(created) > 0 && (len(created) == len(resources) || len(resources) == 1) {
		for i, fl := range created {
			store := resources[0]
			if len(resources) > 1 {
				store = resources[i]
			}
			res := ConfigResource{ID: fl, Type: "log_sink", Store: store}
			if err := m.emit(res, blame, "flow_logs", nil, rawBool(true)); err != nil {
				return err
			}
		}
		return nil
	}
	for _, id := range resources {
		res := ConfigResource{ID: id, Type: "log_sink", Store: id}
		if err := m.emit(res, blame, "flow_logs", nil, rawBool(true)); err != nil {
			return err
		}
	}
	return nil
}

// createdFlowLogs reads CreateFlowLogs' responseElements: the ids of the
// flow logs created (CreateFlowLogsResponse.flowLogIdSet.item, one or a
// list; or flowLogIds) and the resources that failed
// (CreateFlowLogsResponse.unsuccessful.item[].resourceId).
func createdFlowLogs(resp jnode) (created, failed []string, err error) {
	r := resp.get("CreateFlowLogsResponse")
	if r.v == nil {
		r = resp
	}
	set := r.get("flowLogIdSet")
	if m, ok := set.v.(map[string]any); ok && m["item"] != nil {
		set = set.get("item")
	}
	if created, err = idValues(set); err != nil {
		return nil, nil, err
	}
	if len(created) == 0 {
		if created, err = idValues(r.get("flowLogIds")); err != nil {
			return nil, nil, err
		}
	}
	unsuccessful := r.get("unsuccessful")
	if _, ok := unsuccessful.v.(map[string]any); !ok {
		return created, nil, nil // "" when every resource succeeded
	}
	items := unsuccessful.get("item")
	if m, ok := unsuccessful.v.(map[string]any); ok && m["item"] == nil {
		items = unsuccessful.get("items")
	}
	list, err := items.list()
	if err != nil {
		return nil, nil, err
	}
	for _, it := range list {
		id, err := it.get("resourceId").str()
		if err != nil {
			return nil, nil, err
		}
		if id != "" {
			failed = append(failed, id)
		}
	}
	return created, failed, nil
}

// idValues reads ids given as strings, {"content":…} or {"item":…}
// objects, lists of those, or {"items":[…]}; it drops repeats.
func idValues(n jnode) ([]string, error) {
	list, err := n.list()
	if m, ok := n.v.(map[string]any); ok && m["items"] != nil {
		list, err = n.items()
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, it := range list {
		var s string
		if _, ok := it.v.(map[string]any); ok {
			if s, err = it.get("content").str(); err == nil && s == "" {
				s, err = it.get("item").str()
			}
		} else {
			s, err = it.str()
		}
		if err != nil {
			return nil, err
		}
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// ---- Route 53 Resolver

// resolver maps Route 53 Resolver query logging: a query logging
// configuration deleted, or a VPC disassociated from it, turns DNS query
// logging off; a VPC associated with it turns it on again. The request
// names the configuration by resolverQueryLogConfigId (JSON API members
// are logged with a lower-case first letter; the API's own spelling is
// read too).
func (m *ctMapper) resolver() error {
	var on bool
	switch m.rec.EventName {
	case "DeleteResolverQueryLogConfig", "DisassociateResolverQueryLogConfig":
	case "AssociateResolverQueryLogConfig":
		on = true
	default:
		return nil
	}
	req, _, err := m.params()
	if err != nil {
		return err
	}
	idField, id, err := firstOf(req, "resolverQueryLogConfigId", "ResolverQueryLogConfigId")
	if err != nil {
		return err
	}
	// Built, not read from the response, so that the three calls name the
	// configuration alike (only Delete's response carries its ARN).
	arn, err := m.arn("route53resolver", true, true, "resolver-query-log-config/"+id)
	if err != nil {
		return err
	}
	res := ConfigResource{ID: arn, Type: "log_sink", Store: id}
	return m.emit(res, idField.path[len(m.path):], "audit_logging", nil, rawBool(on))
}

// ---- CloudTrail

func (m *ctMapper) cloudtrail() error {
	var setting string
	switch m.rec.EventName {
	case "StopLogging", "DeleteTrail", "StartLogging":
		setting = "audit_logging"
	case "UpdateTrail", "PutEventSelectors":
		setting = "audit_logging_scope"
	default:
		return nil
	}
	req, _, err := m.params()
	if err != nil {
		return err
	}
	var after json.RawMessage
	switch m.rec.EventName {
	case "StartLogging":
		after = rawBool(true)
	case "StopLogging", "DeleteTrail":
		after = rawBool(false)
	case "UpdateTrail":
		narrowed := false
		for _, k := range [...]string{"isMultiRegionTrail", "includeGlobalServiceEvents"} {
			v, present, err := req.get(k).boolean()
			if err != nil {
				return err
			}
			narrowed = narrowed || present && !v
		}
		if !narrowed {
			return nil
		}
		after = rawString("narrowed")
	case "PutEventSelectors":
		narrowed, err := narrowSelectors(req)
		if err != nil {
			return err
		}
		after = rawString("full")
		if narrowed {
			after = rawString("narrowed")
		}
	}
	nameField, name, err := firstOf(req, "name", "trailName")
	if err != nil {
		return err
	}
	res := ConfigResource{ID: name, Type: "log_sink", Store: name}
	if strings.HasPrefix(name, "arn:") {
		res.Store = afterLast(name, "trail/")
	} else if res.ID, err = m.arn("cloudtrail", true, true, "trail/"+name); err != nil {
		return err
	}
	return m.emit(res, nameField.path[len(m.path):], setting, nil, after)
}

// narrowSelectors tells whether PutEventSelectors leaves management events
// (or some of them) unlogged: a basic selector with includeManagementEvents
// false, a readWriteType other than All or excluded event sources; advanced
// selectors of which none selects all management events (eventCategory
// Management and no other field); or no selector at all.
func narrowSelectors(req jnode) (bool, error) {
	basic, err := req.get("eventSelectors").list()
	if err != nil {
		return false, err
	}
	advanced, err := req.get("advancedEventSelectors").list()
	if err != nil {
		return false, err
	}
	if len(basic) == 0 && len(advanced) == 0 {
		return true, nil
	}
	for _, s := range basic {
		mgmt, present, err := s.get("includeManagementEvents").boolean()
		if err != nil {
			return false, err
		}
		rw, err := s.get("readWriteType").str()
		if err != nil {
			return false, err
		}
		excluded, err := s.get("excludeManagementEventSources").strs()
		if err != nil {
			return false, err
		}
		if present && !mgmt || rw != "" && rw != "All" || len(excluded) > 0 {
			return true, nil
		}
	}
	if len(advanced) == 0 {
		return false, nil
	}
	for _, s := range advanced {
		fields, err := s.get("fieldSelectors").list()
		if err != nil {
			return false, err
		}
		management, other := false, false
		for _, f := range fields {
			name, err := f.get("field").str()
			if err != nil {
				return false, err
			}
			if name != "eventCategory" {
				other = true
				continue
			}
			equals, err := f.get("equals").strs()
			if err != nil {
				return false, err
			}
			management = management || slices.Contains(equals, "Management")
		}
		if management && !other {
			return false, nil
		}
	}
	return true, nil
}

// ---- KMS

func (m *ctMapper) kms() error {
	var state string
	switch m.rec.EventName {
	case "DisableKey", "CancelKeyDeletion":
		state = "Disabled"
	case "ScheduleKeyDeletion":
		state = "PendingDeletion"
	case "EnableKey":
		state = "Enabled"
	default:
		return nil
	}
	req, resp, err := m.params()
	if err != nil {
		return err
	}
	idField := req.get("keyId")
	id, err := required(idField)
	if err != nil {
		return err
	}
	arn, err := resp.get("keyId").str()
	if err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(arn, "arn:"):
	case strings.HasPrefix(id, "arn:"):
		arn = id
	default:
		if arn, err = m.arn("kms", true, true, "key/"+id); err != nil {
			return err
		}
	}
	res := ConfigResource{ID: arn, Type: "key", Store: afterLast(id, "key/")}
	return m.emit(res, idField.path[len(m.path):], "key_state", nil, rawString(state))
}

// ---- Lambda

func (m *ctMapper) lambda() error {
	// Lambda names its events with an API version: AddPermission20150331v2.
	name := m.rec.EventName
	if i := strings.IndexAny(name, "0123456789"); i > 0 {
		name = name[:i]
	}
	var public bool
	switch name {
	case "AddPermission", "CreateFunctionUrlConfig", "UpdateFunctionUrlConfig":
	default:
		return nil
	}
	req, _, err := m.params()
	if err != nil {
		return err
	}
	if name == "AddPermission" {
		principal, err := req.get("principal").str()
		if err != nil || principal != "*" {
			return err
		}
		for _, k := range [...]string{"sourceArn", "sourceAccount", "principalOrgID"} {
			if s, err := req.get(k).str(); err != nil || s != "" {
				return err
			}
		}
		public = true
	} else {
		auth, err := req.get("authType").str()
		switch {
		case err != nil:
			return err
		case auth == "NONE":
			public = true
		case auth == "AWS_IAM":
			public = false
		default:
			return nil
		}
	}
	fnField := req.get("functionName")
	fn, err := required(fnField)
	if err != nil {
		return err
	}
	var arn, store string
	switch {
	case strings.HasPrefix(fn, "arn:"):
		arn = fn
		store = functionName(fn)
	case strings.Contains(fn, ":function:"): // 123456789012:function:name
		region, err := m.region()
		if err != nil {
			return err
		}
		arn = "arn:aws:lambda:" + region + ":" + fn
		store = functionName(fn)
	default:
		if arn, err = m.arn("lambda", true, true, "function:"+fn); err != nil {
			return err
		}
		store, _, _ = strings.Cut(fn, ":")
	}
	res := ConfigResource{ID: arn, Type: "function", Store: store}
	return m.emit(res, fnField.path[len(m.path):], "public_access", nil, rawBool(public))
}

// functionName is the name in a (partial) function ARN, without qualifier.
func functionName(arn string) string {
	_, name, _ := strings.Cut(arn, ":function:")
	name, _, _ = strings.Cut(name, ":")
	return name
}

// ---- Redshift

func (m *ctMapper) redshift() error {
	switch m.rec.EventName {
	case "ModifyCluster", "CreateCluster":
	default:
		return nil
	}
	req, _, err := m.params()
	if err != nil {
		return err
	}
	public, present, err := req.get("publiclyAccessible").boolean()
	if err != nil || !present {
		return err
	}
	idField := req.get("clusterIdentifier")
	id, err := required(idField)
	if err != nil {
		return err
	}
	arn, err := m.arn("redshift", true, true, "cluster:"+id)
	if err != nil {
		return err
	}
	res := ConfigResource{ID: arn, Type: "database", Store: id}
	return m.emit(res, idField.path[len(m.path):], "public_access", nil, rawBool(public))
}

// ---- JSON helpers

// jnode is a decoded JSON value (nil when absent or null) with its full
// field name, for errors. An error met on the way down (a member of a
// non-object) is carried to the first read.
type jnode struct {
	v    any
	path string
	err  error
}

// parseNode decodes raw (absent or null: a nil node) with numbers kept as
// json.Number.
func parseNode(raw json.RawMessage, path string) (jnode, error) {
	n := jnode{path: path}
	if len(raw) == 0 {
		return n, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n.v); err != nil {
		return n, &Error{Kind: KindSyntax, Field: path, Msg: "invalid JSON"}
	}
	if dec.More() {
		return n, &Error{Kind: KindSyntax, Field: path, Msg: "invalid JSON: unexpected data after the value"}
	}
	return n, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "null"
}

func (n jnode) typeErr(want string) *Error {
	return &Error{Kind: KindType, Field: n.path, Msg: "want " + want + ", got " + jsonKind(n.v)}
}

// get is the member key of an object (a nil node when n is absent).
func (n jnode) get(key string) jnode {
	c := jnode{path: n.path + "." + key, err: n.err}
	if n.err != nil {
		return c
	}
	switch v := n.v.(type) {
	case nil:
	case map[string]any:
		c.v = v[key]
	default:
		c.err = n.typeErr("an object")
	}
	return c
}

// str reads a string; absent reads as "".
func (n jnode) str() (string, error) {
	if n.err != nil {
		return "", n.err
	}
	switch v := n.v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", n.typeErr("a string")
}

// strOrInt reads a string or an integer, as a string.
func (n jnode) strOrInt() (string, error) {
	if num, ok := n.v.(json.Number); ok && n.err == nil {
		if _, err := num.Int64(); err != nil {
			return "", badValue(n.path, "must be a whole number; got "+quote(num.String()))
		}
		return num.String(), nil
	}
	return n.str()
}

// boolean reads true or false (also as strings).
func (n jnode) boolean() (v, present bool, err error) {
	if n.err != nil {
		return false, false, n.err
	}
	switch v := n.v.(type) {
	case nil:
		return false, false, nil
	case bool:
		return v, true, nil
	case string:
		switch {
		case strings.EqualFold(v, "true"):
			return true, true, nil
		case strings.EqualFold(v, "false"):
			return false, true, nil
		}
	}
	return false, false, n.typeErr("a boolean")
}

// integer reads a whole number (also as a string).
func (n jnode) integer() (v int64, present bool, err error) {
	if n.err != nil {
		return 0, false, n.err
	}
	var s string
	switch x := n.v.(type) {
	case nil:
		return 0, false, nil
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, false, n.typeErr("an integer")
	}
	v, perr := strconv.ParseInt(s, 10, 64)
	if perr != nil {
		return 0, false, badValue(n.path, "must be a whole number; got "+quote(s))
	}
	return v, true, nil
}

// list reads an array as its elements; any other value reads as a list of
// one (AWS logs a single element without the array), absent as none.
func (n jnode) list() ([]jnode, error) {
	if n.err != nil {
		return nil, n.err
	}
	switch v := n.v.(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]jnode, len(v))
		for i := range v {
			out[i] = jnode{v: v[i], path: n.path + "[" + strconv.Itoa(i) + "]"}
		}
		return out, nil
	}
	return []jnode{n}, nil
}

// items reads EC2's {"items":[…]} lists (or a bare array).
func (n jnode) items() ([]jnode, error) {
	switch n.v.(type) {
	case map[string]any:
		return n.get("items").list()
	case nil:
		return nil, n.err
	}
	return n.list()
}

// strs reads a string or a list of strings, dropping empty ones.
func (n jnode) strs() ([]string, error) {
	list, err := n.list()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range list {
		s, err := e.str()
		if err != nil {
			return nil, err
		}
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// rawKind names the JSON type of a raw value.
func rawKind(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch c := raw[0]; {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	}
	return "a number"
}

// jsonErr turns an encoding/json error into an *Error, prefixing field
// names with path.
func jsonErr(path string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := path + te.Field
		if te.Field == "" {
			field = strings.TrimSuffix(path, ".")
		}
		return &Error{Kind: KindType, Field: field,
			Msg: "want " + goKind(te.Type) + ", got " + valueKind(te.Value)}
	}
	return &Error{Kind: KindSyntax, Field: strings.TrimSuffix(path, "."), Msg: "invalid JSON"}
}

func goKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		if t == reflect.TypeFor[json.RawMessage]() {
			return "a JSON value"
		}
		return "an array"
	case reflect.Bool:
		return "a boolean"
	}
	return "a number"
}

func valueKind(v string) string {
	switch {
	case strings.HasPrefix(v, "number"):
		return "a number"
	case v == "bool":
		return "a boolean"
	case v == "string":
		return "a string"
	case v == "array":
		return "an array"
	case v == "object":
		return "an object"
	}
	return v
}
