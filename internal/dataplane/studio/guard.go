package studio

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Statement is one top-level statement of a request, as Postgres's own
// parser (libpg_query) split it.
type Statement struct {
	SQL string // the statement's text, without the separating ';'
	// Offset is the number of characters before the statement in the whole
	// request, so a server error position can be made absolute.
	Offset int
	// Kind is the parse node's name without "_stmt": select, insert, update,
	// delete, create, alter_table, variable_set, explain, …
	Kind string
}

// Error is a refusal or a Postgres error, shown to the caller as is.
type Error struct {
	Msg      string
	SQLState string
	Position int  // 1-based character in the whole request; 0 = none
	broken   bool // the session is unusable afterwards
}

func (e *Error) Error() string {
	msg := e.Msg
	if e.Position > 0 {
		msg += fmt.Sprintf(" at character %d", e.Position)
	}
	if e.SQLState != "" {
		msg += " (SQLSTATE " + e.SQLState + ")"
	}
	return msg
}

// Parse splits sql into statements with Postgres's parser. A syntax error is
// an *Error with SQLSTATE 42601 and the position Postgres would report.
func Parse(sql string) ([]Statement, *pg_query.ParseResult, error) {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		var pe *parser.Error
		if errors.As(err, &pe) {
			return nil, nil, &Error{Msg: pe.Message, SQLState: "42601", Position: pe.Cursorpos}
		}
		return nil, nil, &Error{Msg: err.Error(), SQLState: "42601"}
	}
	out := make([]Statement, 0, len(tree.Stmts))
	for _, raw := range tree.Stmts {
		start := int(raw.StmtLocation)
		end := len(sql)
		if raw.StmtLen > 0 {
			end = start + int(raw.StmtLen)
		}
		text := sql[start:end]
		trimmed := strings.TrimLeft(text, " \t\r\n")
		offset := utf8.RuneCountInString(sql[:start]) + utf8.RuneCountInString(text[:len(text)-len(trimmed)])
		out = append(out, Statement{SQL: trimmed, Offset: offset, Kind: kindOf(raw.Stmt)})
	}
	return out, tree, nil
}

func kindOf(n *pg_query.Node) string {
	if n == nil {
		return "empty"
	}
	m := n.ProtoReflect()
	f := m.WhichOneof(m.Descriptor().Oneofs().ByName("node"))
	if f == nil {
		return "unknown"
	}
	return strings.TrimSuffix(string(f.Name()), "_stmt")
}

// Check refuses, before anything runs, what the request must never do:
//   - transaction control (BEGIN, COMMIT, ROLLBACK, PREPARE TRANSACTION, …):
//     the request is one transaction that the runner opens and ends, and a
//     COMMIT in the middle would let later statements escape its limits;
//   - COPY from STDIN or to STDOUT, which would wait for a client stream;
//   - unless allowUnqualified, an UPDATE or DELETE without its own WHERE —
//     wherever it sits: top level, a data-modifying CTE, EXPLAIN ANALYZE,
//     PREPARE — and any TRUNCATE. A WHERE of a sub-query or a CTE is a
//     different node and does not count; comments and string literals are
//     not nodes at all, so they cannot fool it.
func Check(tree *pg_query.ParseResult, allowUnqualified bool) error {
	var refusal error
	for _, raw := range tree.Stmts {
		walk(raw.ProtoReflect(), func(m protoreflect.Message) bool {
			switch n := m.Interface().(type) {
			case *pg_query.TransactionStmt:
				switch n.Kind {
				case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT, pg_query.TransactionStmtKind_TRANS_STMT_RELEASE,
					pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
				default:
					refusal = &Error{Msg: "transaction control statements (BEGIN, COMMIT, ROLLBACK, PREPARE TRANSACTION) are not allowed: the request already runs in one transaction, committed when every statement succeeds"}
				}
			case *pg_query.UpdateStmt:
				if n.WhereClause == nil && !allowUnqualified {
					refusal = unqualified("UPDATE")
				}
			case *pg_query.DeleteStmt:
				if n.WhereClause == nil && !allowUnqualified {
					refusal = unqualified("DELETE")
				}
			case *pg_query.CopyStmt:
				// STDIN/STDOUT is a stream to the client, which an HTTP
				// request does not have (server files and programs are
				// Postgres's to refuse: the tenant holds no such rights).
				if n.Filename == "" && !n.IsProgram {
					refusal = &Error{Msg: "COPY … FROM STDIN / TO STDOUT needs a client connection; use psql with the project's URL, or INSERT … VALUES / SELECT"}
				}
			case *pg_query.TruncateStmt:
				if !allowUnqualified {
					refusal = &Error{Msg: "refusing TRUNCATE; set allow_unqualified_writes to run it"}
				}
			}
			return refusal == nil
		})
		if refusal != nil {
			return refusal
		}
	}
	return nil
}

func unqualified(verb string) error {
	return &Error{Msg: "refusing " + verb + " without a WHERE clause; set allow_unqualified_writes to run it"}
}

// walk visits m and every message below it, depth first, until fn returns false.
func walk(m protoreflect.Message, fn func(protoreflect.Message) bool) bool {
	if !fn(m) {
		return false
	}
	ok := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && ok; i++ {
				ok = walk(l.Get(i).Message(), fn)
			}
		case fd.IsMap():
		default:
			ok = walk(v.Message(), fn)
		}
		return ok
	})
	return ok
}
