package typegen

import (
	"fmt"
	"strings"

	"github.com/capydb/capydb/internal/schema"
)

// pydanticReserved are BaseModel attributes a field may not shadow.
var pydanticReserved = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`dict json copy parse_obj parse_raw parse_file from_orm construct schema schema_json
		validate update_forward_refs fields Config model_config model_fields model_computed_fields`) {
		pydanticReserved[w] = true
	}
}

// pythonSource renders Literal aliases for enums and a class per table or
// view: a dataclass, or a pydantic model whose aliases carry the exact
// column names where the attribute name had to differ. Needs Python 3.10+.
func pythonSource(m *model, pydantic bool) string {
	reserved := []string{"Any", "Literal", "Optional", "Union", "TypeAlias", "Json", "Field", "BaseModel", "dataclass"}
	tables, enums := typeNames(m, reserved...)
	for k, v := range tables {
		if pyKeywords[v] {
			tables[k] = v + "_"
		}
	}
	for k, v := range enums {
		if pyKeywords[v] {
			enums[k] = v + "_"
		}
	}
	var body strings.Builder
	uses := map[string]bool{}
	for _, e := range m.enums {
		body.WriteString("\n" + comment("#", describe(qualified(e.Schema, e.Name), e.Comment)))
		lit := "Literal[" + jsList(e.Values) + "]"
		if len(e.Values) == 0 {
			lit = "str"
		}
		fmt.Fprintf(&body, "%s: TypeAlias = %s\n", enums[e.SchemaEnum], lit)
	}
	for _, t := range m.tables {
		body.WriteString("\n\n")
		if pydantic {
			fmt.Fprintf(&body, "class %s(BaseModel):\n", tables[t.SchemaTable])
		} else {
			fmt.Fprintf(&body, "@dataclass\nclass %s:\n", tables[t.SchemaTable])
		}
		doc := qualified(t.Schema, t.Name) + " (" + t.Kind + ")"
		fmt.Fprintf(&body, "    %s\n\n", pyDocstring(doc, t.Comment))
		fields := namer{}
		if len(t.Columns) == 0 {
			body.WriteString("    pass\n")
		}
		for _, c := range t.Columns {
			name := pyIdent(c.Name)
			if pydantic && pydanticReserved[name] {
				name += "_"
			}
			name = fields.get(name)
			body.WriteString(comment("    #", c.Comment))
			typ := pyType(m, &c, enums, uses)
			if pydantic && name != c.Name {
				fmt.Fprintf(&body, "    %s: %s = Field(alias=%s)\n", name, typ, jsString(c.Name))
				uses["Field"] = true
			} else {
				fmt.Fprintf(&body, "    %s: %s\n", name, typ)
			}
		}
	}
	var b strings.Builder
	b.WriteString("# " + header(m.s) + "\n\n")
	for _, mod := range []string{"datetime", "decimal", "uuid"} {
		if uses[mod] {
			b.WriteString("import " + mod + "\n")
		}
	}
	if pydantic {
		if uses["Field"] {
			b.WriteString("from pydantic import BaseModel, Field\n")
		} else {
			b.WriteString("from pydantic import BaseModel\n")
		}
	} else {
		b.WriteString("from dataclasses import dataclass\n")
	}
	b.WriteString("from typing import Any, Literal, Optional, TypeAlias, Union\n\n")
	b.WriteString("Json: TypeAlias = Union[dict[str, Any], list[Any], str, int, float, bool, None]\n")
	b.WriteString(body.String())
	return b.String()
}

// pyDocstring is a one-line docstring; the text is escaped as a literal.
func pyDocstring(head, text string) string {
	s := head
	if text != "" {
		s += ": " + strings.Join(strings.Fields(text), " ")
	}
	return jsString(s)
}

func pyType(m *model, c *schema.SchemaColumn, enums map[*schema.SchemaEnum]string, uses map[string]bool) string {
	var t string
	if e := m.enumFor(c); e != nil {
		t = enums[e.SchemaEnum]
	} else {
		switch kindOf(c.UdtName) {
		case kInt, kBigInt:
			t = "int"
		case kFloat:
			t = "float"
		case kNumeric:
			t, uses["decimal"] = "decimal.Decimal", true
		case kBool:
			t = "bool"
		case kJSON:
			t = "Json"
		case kBytes:
			t = "bytes"
		case kDate:
			t, uses["datetime"] = "datetime.date", true
		case kTimestamp, kTimestamptz:
			t, uses["datetime"] = "datetime.datetime", true
		case kTime:
			t, uses["datetime"] = "datetime.time", true
		case kUUID:
			t, uses["uuid"] = "uuid.UUID", true
		case kUnknown:
			t = "Any"
		default:
			t = "str"
		}
		if c.UdtName == "interval" {
			t, uses["datetime"] = "datetime.timedelta", true
		}
	}
	for i := 0; c.IsArray && i < c.ArrayDims; i++ {
		t = "list[" + t + "]"
	}
	if c.IsNullable {
		t = "Optional[" + t + "]"
	}
	return t
}
