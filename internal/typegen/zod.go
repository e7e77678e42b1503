package typegen

import (
	"fmt"
	"strings"

	"github.com/capydb/capydb/internal/schema"
)

// zodTS renders zod schemas (row and insert per table, row per view) and
// the types inferred from them.
func zodTS(m *model) string {
	var b strings.Builder
	b.WriteString("// " + header(m.s) + "\n\nimport { z } from \"zod\";\n\n")
	b.WriteString(tsJSON)
	b.WriteString("export const JsonSchema: z.ZodType<Json> = z.lazy(() =>\n" +
		"  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(JsonSchema), z.record(z.string(), JsonSchema.optional())]),\n);\n")
	tables, enums := typeNames(m, "Json", "JsonSchema")
	for _, e := range m.enums {
		name := enums[e.SchemaEnum]
		b.WriteString("\n" + comment("//", describe(qualified(e.Schema, e.Name), e.Comment)))
		if len(e.Values) == 0 {
			fmt.Fprintf(&b, "export const %sSchema = z.never();\n", name)
		} else {
			fmt.Fprintf(&b, "export const %sSchema = z.enum([%s]);\n", name, jsList(e.Values))
		}
		fmt.Fprintf(&b, "export type %s = z.infer<typeof %sSchema>;\n", name, name)
	}
	for _, t := range m.tables {
		name := tables[t.SchemaTable]
		b.WriteString("\n" + comment("//", describe(qualified(t.Schema, t.Name)+" ("+t.Kind+")", t.Comment)))
		fmt.Fprintf(&b, "export const %sSchema = z.object({\n", name)
		for _, c := range t.Columns {
			fmt.Fprintf(&b, "  %s: %s,\n", tsKey(c.Name), zodType(m, &c, enums))
		}
		b.WriteString("});\n")
		fmt.Fprintf(&b, "export type %s = z.infer<typeof %sSchema>;\n", name, name)
		if t.IsView() || t.Kind == schema.KindForeignTable {
			continue
		}
		fmt.Fprintf(&b, "export const %sInsertSchema = z.object({\n", name)
		for _, c := range t.Columns {
			if !insertable(&c) {
				continue
			}
			z := zodType(m, &c, enums)
			if optionalOnInsert(&c) {
				z += ".optional()"
			}
			fmt.Fprintf(&b, "  %s: %s,\n", tsKey(c.Name), z)
		}
		b.WriteString("});\n")
		fmt.Fprintf(&b, "export type %sInsert = z.infer<typeof %sInsertSchema>;\n", name, name)
		fmt.Fprintf(&b, "export const %sUpdateSchema = %sInsertSchema.partial();\n", name, name)
		fmt.Fprintf(&b, "export type %sUpdate = z.infer<typeof %sUpdateSchema>;\n", name, name)
	}
	return b.String()
}

func zodType(m *model, c *schema.SchemaColumn, enums map[*schema.SchemaEnum]string) string {
	var z string
	if e := m.enumFor(c); e != nil {
		z = enums[e.SchemaEnum] + "Schema"
	} else {
		switch kindOf(c.UdtName) {
		case kInt, kBigInt:
			z = "z.number().int()"
		case kFloat:
			z = "z.number()"
		case kBool:
			z = "z.boolean()"
		case kJSON:
			z = "JsonSchema"
		case kUUID:
			z = "z.string().uuid()"
		case kUnknown:
			z = "z.unknown()"
		default:
			z = "z.string()"
		}
	}
	for i := 0; c.IsArray && i < c.ArrayDims; i++ {
		z = "z.array(" + z + ")"
	}
	if c.IsNullable {
		z += ".nullable()"
	}
	return z
}
