// Package studio runs Studio SQL on a tenant database: the limits of
// PRODUCT.md §16, the unqualified-write guard (Postgres's own parser), one
// transaction per request, and the JSON value encoding of API.md §4.11.
//
// It never decides who may run what: the caller connects as the tenant's own
// login (never a superuser), so a statement can do exactly what the tenant
// could do with its URL. What this package adds is that a request cannot
// leave its transaction, its time limit or its read-only mode.
package studio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Limits of PRODUCT.md §16 and the runner's own memory bounds.
const (
	MaxQueryChars   = 20000
	DefaultRows     = 200
	MaxRows         = 1000
	DefaultTimeout  = 15 * time.Second
	maxResultBytes  = 8 << 20  // encoded rows per response; later rows are left out (truncated)
	maxValueBytes   = 1 << 20  // one value's text; longer values are cut and marked
	maxMessageBytes = 64 << 20 // one row on the wire; a bigger row fails the request
)

// Request is one Studio SQL request.
type Request struct {
	SQL                    string
	MaxRows                int
	ReadOnly               bool
	AllowUnqualifiedWrites bool
}

// Validate checks the request's own limits (API.md §3.17).
func (r *Request) Validate() error {
	n := utf8.RuneCountInString(r.SQL)
	switch {
	case strings.TrimSpace(r.SQL) == "":
		return &Error{Msg: `invalid field "query": must not be empty`}
	case n > MaxQueryChars:
		return &Error{Msg: fmt.Sprintf(`invalid field "query": %d characters is over the limit of %d`, n, MaxQueryChars)}
	case r.MaxRows < 0:
		return &Error{Msg: `invalid field "max_rows": must not be negative`}
	case r.ReadOnly && r.AllowUnqualifiedWrites:
		return &Error{Msg: "read_only and allow_unqualified_writes cannot be used together"}
	}
	return nil
}

// Result is an SQLQueryResult; Rows are JSON objects in column order.
type Result struct {
	Columns    []string          `json:"columns"`
	Rows       []json.RawMessage `json:"rows"`
	RowCount   int64             `json:"row_count"`
	DurationMS int64             `json:"duration_ms"`
	Truncated  bool              `json:"truncated"`
	// Kinds are the statement kinds (for the audit log); ValuesCut says a
	// value over the per-value limit was shortened.
	Kinds     []string `json:"-"`
	ValuesCut bool     `json:"-"`
}

// ErrTimeout is the statement timeout (408).
var ErrTimeout = errors.New("statement timed out")

// ErrBroken marks a connection that must not be reused.
var ErrBroken = errors.New("connection is no longer usable")

// Runner runs requests with a time limit.
type Runner struct {
	Timeout time.Duration // 0 = DefaultTimeout
}

func (r *Runner) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultTimeout
}

// TimeoutMessage is the 408 message.
func (r *Runner) TimeoutMessage() string {
	return fmt.Sprintf("statement timed out after %s", r.timeout())
}

// Run runs req on conn, an idle session of the tenant's login. It returns
// reusable=false when conn must be closed (cancelled mid-statement, protocol
// trouble); otherwise conn is idle outside any transaction, and the caller
// resets its session state before anyone else uses it (Pools runs DISCARD
// ALL when a session is released, off the request's path).
//
// The time limit is enforced twice: SET LOCAL statement_timeout per
// statement, and a deadline on the whole request that cancels the running
// statement with the protocol's cancel request. A statement that raises its
// own statement_timeout still stops at the deadline, and so does one whose
// client went away (ctx cancelled).
func (r *Runner) Run(ctx context.Context, conn *pgconn.PgConn, req Request) (res *Result, reusable bool, err error) {
	plan, err := Prepare(req)
	if err != nil {
		return nil, true, err
	}
	return r.Execute(ctx, conn, plan)
}

// Plan is a request that passed its limits and the guard.
type Plan struct {
	req   Request
	stmts []Statement
}

// Kinds are the plan's statement kinds.
func (p *Plan) Kinds() []string {
	out := make([]string, len(p.stmts))
	for i, st := range p.stmts {
		out[i] = st.Kind
	}
	return out
}

// Prepare validates req, parses it and applies the guard; nothing runs.
func Prepare(req Request) (*Plan, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	stmts, tree, err := Parse(req.SQL)
	if err != nil {
		return nil, err
	}
	if len(stmts) == 0 {
		return nil, &Error{Msg: `invalid field "query": contains no statement`}
	}
	if err := Check(tree, req.AllowUnqualifiedWrites); err != nil {
		return nil, err
	}
	return &Plan{req: req, stmts: stmts}, nil
}

// Execute runs a prepared plan on conn (see Run).
func (r *Runner) Execute(ctx context.Context, conn *pgconn.PgConn, plan *Plan) (res *Result, reusable bool, err error) {
	req, stmts := plan.req, plan.stmts
	maxRows := req.MaxRows
	if maxRows == 0 {
		maxRows = DefaultRows
	}
	maxRows = min(maxRows, MaxRows)

	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	var cancelled atomic.Bool
	stop := context.AfterFunc(dctx, func() {
		cancelled.Store(true)
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		_ = conn.CancelRequest(cctx)
		// A server that does not answer the cancel must not hold the request.
		_ = conn.Conn().SetDeadline(time.Now().Add(5 * time.Second))
	})
	defer func() {
		if !stop() {
			// The cancel ran (or is running): the session may get a late
			// cancel, so it is not reused.
			reusable = false
		}
		var e *Error
		// Postgres's own statement_timeout (57014) may fire a moment before
		// the request deadline: both are the time limit.
		if err != nil && (cancelled.Load() || errors.As(err, &e) && e.SQLState == "57014") {
			if ctx.Err() != nil {
				err = ctx.Err()
			} else {
				err = ErrTimeout
			}
		}
	}()

	res = &Result{Columns: []string{}, Rows: []json.RawMessage{}, Kinds: plan.Kinds()}
	conn.Frontend().SetMaxBodyLen(maxMessageBytes)
	if err := begin(conn, req.ReadOnly, r.timeout()); err != nil {
		return nil, false, err
	}
	runErr := r.runStatements(conn, stmts, maxRows, res)
	if runErr != nil {
		var e *Error
		if !errors.As(runErr, &e) || e.broken {
			return nil, false, runErr
		}
		if err := finish(conn, "ROLLBACK"); err != nil {
			return nil, false, runErr
		}
		return nil, true, runErr
	}
	if conn.TxStatus() != 'T' {
		// A statement ended the transaction (Check refuses transaction
		// control; this is the last line of defence).
		return nil, false, &Error{Msg: "the request's transaction was ended by a statement; nothing after it ran"}
	}
	if _, err := conn.Exec(context.Background(), "COMMIT").ReadAll(); err != nil {
		if pe := pgError(err, 0); pe != nil {
			return nil, conn.TxStatus() == 'I', pe
		}
		return nil, false, err
	}
	res.DurationMS = time.Since(start).Milliseconds()
	return res, true, nil
}

// begin opens the request's transaction with its limits. The display
// settings make the text values parse (encode.go). In read-only mode a first
// query takes the transaction's snapshot, after which Postgres refuses SET
// TRANSACTION READ WRITE ("must be set before any query").
func begin(conn *pgconn.PgConn, readOnly bool, timeout time.Duration) error {
	mode := "READ WRITE"
	if readOnly {
		mode = "READ ONLY"
	}
	sql := "BEGIN ISOLATION LEVEL READ COMMITTED " + mode + "; " +
		"SET LOCAL statement_timeout = " + strconv.FormatInt(timeout.Milliseconds(), 10) + "; " +
		"SET LOCAL idle_in_transaction_session_timeout = 0; " +
		"SET LOCAL DateStyle = 'ISO, MDY'; SET LOCAL IntervalStyle = 'postgres'; SET LOCAL bytea_output = 'hex'; " +
		"SELECT 1"
	_, err := conn.Exec(context.Background(), sql).ReadAll()
	return err
}

// finish runs one closing command outside any statement of the caller's.
func finish(conn *pgconn.PgConn, sql string) error {
	_, err := conn.Exec(context.Background(), sql).ReadAll()
	return err
}

func (r *Runner) runStatements(conn *pgconn.PgConn, stmts []Statement, maxRows int, res *Result) error {
	last := len(stmts) - 1
	for _, st := range stmts[:last] {
		if err := execDiscard(conn, st); err != nil {
			return err
		}
		if conn.TxStatus() != 'T' {
			if conn.TxStatus() == 'E' {
				return &Error{Msg: "the transaction is aborted"}
			}
			return &Error{Msg: "the request's transaction was ended by a statement; nothing after it ran"}
		}
	}
	return r.runLast(conn, stmts[last], maxRows, res)
}

// execDiscard runs a statement whose result is not returned, reading its rows
// without keeping them.
func execDiscard(conn *pgconn.PgConn, st Statement) error {
	mrr := conn.Exec(context.Background(), st.SQL)
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		for rr.NextRow() {
		}
		if _, err := rr.Close(); err != nil {
			_ = mrr.Close()
			return convert(err, st.Offset)
		}
	}
	return convert(mrr.Close(), st.Offset)
}

// tooLarge turns the wire limit on one message into a refusal; the session
// is unusable after it.
func tooLarge(err error) error {
	if errors.As(err, new(*pgproto3.ExceededMaxBodyLenErr)) {
		return &Error{Msg: fmt.Sprintf("a row of the result is larger than %d MiB; select fewer or shorter columns (the transaction was rolled back)", maxMessageBytes>>20), broken: true}
	}
	return err
}

func convert(err error, offset int) error {
	if err == nil {
		return nil
	}
	if pe := pgError(err, offset); pe != nil {
		return pe
	}
	return tooLarge(err)
}

// pgError turns a server error into an *Error with the position made
// relative to the whole request.
func pgError(err error, offset int) *Error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return nil
	}
	e := &Error{Msg: pe.Message, SQLState: pe.Code}
	if pe.Position > 0 {
		e.Position = int(pe.Position) + offset
	}
	if pe.Code == "57014" {
		e.Msg = "canceling statement" // replaced by ErrTimeout or ctx.Err() in Run
	}
	return e
}

const stmtName = "capydb_studio"

// runLast runs the last statement in the extended protocol so its portal
// stops after maxRows+1 rows: a huge SELECT is never fully read.
func (r *Runner) runLast(conn *pgconn.PgConn, st Statement, maxRows int, res *Result) error {
	// A named statement: the type lookup below would replace an unnamed one.
	// The session reset after the request (DISCARD ALL) deallocates it.
	sd, err := conn.Prepare(context.Background(), stmtName, st.SQL, nil)
	if err != nil {
		return convert(err, st.Offset)
	}
	if len(sd.ParamOIDs) > 0 {
		return &Error{Msg: "query parameters ($1, …) are not supported: write the values into the query"}
	}
	enc := &encoder{maxValue: maxValueBytes}
	if err := lookupTypes(conn, sd.Fields, enc); err != nil {
		return err
	}
	names := columnNames(sd.Fields)
	res.Columns = names
	keys := make([][]byte, len(names))
	oids := make([]uint32, len(names))
	for i, n := range names {
		keys[i] = appendString(nil, n)
		oids[i] = sd.Fields[i].DataTypeOID
	}

	fe := conn.Frontend()
	fe.SendBind(&pgproto3.Bind{PreparedStatement: stmtName})
	fe.SendExecute(&pgproto3.Execute{MaxRows: uint32(maxRows + 1)})
	fe.SendSync(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		return err
	}
	var stmtErr error
	var size int
	for {
		msg, err := conn.ReceiveMessage(context.Background())
		if err != nil {
			return tooLarge(err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			if len(res.Rows) >= maxRows || size >= maxResultBytes {
				res.Truncated = true
				continue
			}
			row := enc.appendRow(keys, oids, m.Values)
			size += len(row)
			res.Rows = append(res.Rows, row)
		case *pgproto3.PortalSuspended:
			res.Truncated = true
		case *pgproto3.CommandComplete:
			if len(sd.Fields) == 0 {
				res.RowCount = rowsAffected(string(m.CommandTag))
			}
		case *pgproto3.ErrorResponse:
			stmtErr = pgError(pgconn.ErrorResponseToPgError(m), st.Offset)
		case *pgproto3.ReadyForQuery:
			if stmtErr != nil {
				return stmtErr
			}
			if len(sd.Fields) > 0 {
				res.RowCount = int64(len(res.Rows))
			}
			res.ValuesCut = enc.cut
			return nil
		}
	}
}

// rowsAffected reads the count at the end of a command tag ("UPDATE 3").
func rowsAffected(tag string) int64 {
	i := strings.LastIndexByte(tag, ' ')
	if i < 0 {
		return 0
	}
	n, _ := strconv.ParseInt(tag[i+1:], 10, 64)
	return n
}

// columnNames gives duplicates _2, _3 suffixes (API.md §4.11).
func columnNames(fields []pgconn.FieldDescription) []string {
	seen := map[string]int{}
	taken := map[string]bool{}
	for _, f := range fields {
		taken[f.Name] = true
	}
	out := make([]string, len(fields))
	for i, f := range fields {
		name := f.Name
		if n := seen[f.Name]; n > 0 {
			for k := n + 1; ; k++ {
				cand := f.Name + "_" + strconv.Itoa(k)
				if !taken[cand] {
					name = cand
					seen[f.Name] = k
					break
				}
			}
		} else {
			seen[f.Name] = 1
		}
		taken[name] = true
		out[i] = name
	}
	return out
}

// lookupTypes resolves OIDs the encoder does not know (domains, enums,
// arrays of user types) in one catalog query.
func lookupTypes(conn *pgconn.PgConn, fields []pgconn.FieldDescription, enc *encoder) error {
	var unknown []string
	for _, f := range fields {
		if _, ok := builtin[f.DataTypeOID]; !ok {
			unknown = append(unknown, strconv.FormatUint(uint64(f.DataTypeOID), 10))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	// Domains resolve to their base type; arrays name their element's base
	// type. Qualified so nothing of the tenant's can shadow them.
	sql := `WITH t AS (SELECT oid, CASE WHEN typtype OPERATOR(pg_catalog.=) 'd' THEN typbasetype ELSE oid END AS base
		FROM pg_catalog.pg_type WHERE oid OPERATOR(pg_catalog.=) ANY ('{` + strings.Join(unknown, ",") + `}'::pg_catalog.oid[]))
		SELECT t.oid, t.base, b.typcategory, b.typelem, e.typdelim
		FROM t JOIN pg_catalog.pg_type b ON b.oid OPERATOR(pg_catalog.=) t.base
		LEFT JOIN pg_catalog.pg_type e ON e.oid OPERATOR(pg_catalog.=) b.typelem`
	rr := conn.ExecParams(context.Background(), sql, nil, nil, nil, nil)
	enc.types = map[uint32]typeInfo{}
	for rr.NextRow() {
		v := rr.Values()
		oid, _ := strconv.ParseUint(string(v[0]), 10, 32)
		base, _ := strconv.ParseUint(string(v[1]), 10, 32)
		elem, _ := strconv.ParseUint(string(v[3]), 10, 32)
		info, ok := builtin[uint32(base)]
		if string(v[2]) == "A" && elem != 0 {
			delim := byte(',')
			if len(v[4]) == 1 {
				delim = v[4][0]
			}
			info, ok = typeInfo{enc: encArray, elem: baseOf(uint32(elem)), delim: delim}, true
		}
		if ok {
			enc.types[uint32(oid)] = info
		}
	}
	_, err := rr.Close()
	return convert(err, 0)
}

// baseOf is the element type used for encoding: builtin ones as they are,
// anything else as text.
func baseOf(oid uint32) uint32 {
	if _, ok := builtin[oid]; ok {
		return oid
	}
	return 25
}
