package cli

import (
	"fmt"
	"strings"

	"github.com/capydb/capydb/internal/apiclient"
)

// Every command that names an object takes its id or its name (CLI.md §5):
// the id first, then the names, case-insensitive. matchRef is that one rule;
// the resolvers below apply it to what each command can name.

// matchRef returns the items whose id is ref or, failing that, the items
// matched by the first name function that matches any (several name
// functions: project slug before name).
func matchRef[T any](items []T, ref string, id func(*T) string, names ...func(*T) string) []T {
	pick := func(f func(*T) string, exact bool) []T {
		var out []T
		for i := range items {
			v := f(&items[i])
			if v != "" && (v == ref || (!exact && strings.EqualFold(v, ref))) {
				out = append(out, items[i])
			}
		}
		return out
	}
	if m := pick(id, true); len(m) > 0 {
		return m
	}
	for _, f := range names {
		if m := pick(f, false); len(m) > 0 {
			return m
		}
	}
	return nil
}

// one is the single match of ref among items listed by c: exit 4 when
// none, a usage error asking for the id when several. Both name the server
// that was asked: a wrong --api-url shows up as "not found".
func one[T any](c *apiclient.Client, m []T, what, ref string) (*T, error) {
	switch len(m) {
	case 0:
		return nil, &atServer{server: c.BaseURL, err: withCode(exitNotFound, "%s %q not found", what, ref)}
	case 1:
		return &m[0], nil
	}
	return nil, &atServer{server: c.BaseURL, err: usageError(fmt.Sprintf("several %ss are named %q; pass the id", what, ref))}
}

// mayNotList: the key may act on an object (by id) without the scope to
// list them; the server then judges the reference itself.
func mayNotList(err error) bool { return apiclient.StatusOf(err) == 403 }

// resolveProject finds the project a command works on (CLI.md §5): --project
// (id, then slug, then name, case-insensitive) or, without it, the linked
// project (when useLink), or the only visible project.
func (a *app) resolveProject(c *apiclient.Client, ref string, useLink bool) (*apiclient.Project, error) {
	if ref == "" && useLink && a.link != nil {
		p, err := c.GetProject(a.ctx, a.link.ProjectID)
		if apiclient.StatusOf(err) == 404 {
			return nil, withCode(exitNotFound, "the linked project %s (%s) was not found on %s; run capydb link again", a.link.ProjectName, a.link.ProjectID, c.BaseURL)
		}
		return p, op("read the linked project", err)
	}
	list, err := c.ListProjects(a.ctx)
	if err != nil {
		return nil, op("list projects", err)
	}
	if ref == "" {
		switch len(list) {
		case 0:
			return nil, withCode(exitNotFound, "there are no projects yet; create one with capydb create --name <name>")
		case 1:
			return &list[0], nil
		}
		return a.pickProject(list, "Several projects are visible; pass --project <id|slug|name> or link one with capydb link")
	}
	m := matchRef(list, ref, func(p *apiclient.Project) string { return p.ID },
		func(p *apiclient.Project) string { return p.Slug }, func(p *apiclient.Project) string { return p.Name })
	if len(m) == 0 {
		return nil, &atServer{server: c.BaseURL, err: withCode(exitNotFound, "project %q not found", ref)}
	}
	if len(m) == 1 {
		return &m[0], nil
	}
	return a.pickProject(m, fmt.Sprintf("Several projects match %q; pass its id with --project", ref))
}

func (a *app) pickProject(list []apiclient.Project, msg string) (*apiclient.Project, error) {
	if !a.interactive {
		return nil, usageError(msg)
	}
	labels := make([]string, len(list))
	for i, p := range list {
		labels[i] = fmt.Sprintf("%s (%s, %s)", p.Name, p.Slug, p.ID)
	}
	i, err := a.choose("Which project?", labels)
	if err != nil {
		return nil, err
	}
	return &list[i], nil
}

// resolvePreview matches ref against the project's previews by id, then
// case-insensitive name.
func (a *app) resolvePreview(c *apiclient.Client, projectID, ref string) (*apiclient.PreviewDatabase, error) {
	if ref == "" {
		return nil, usageError("--preview <id|name> is required")
	}
	list, err := c.ListPreviews(a.ctx, projectID)
	if err != nil {
		return nil, op("list previews", err)
	}
	return one(c, matchRef(list, ref, func(p *apiclient.PreviewDatabase) string { return p.ID },
		func(p *apiclient.PreviewDatabase) string { return p.Name }), "preview", ref)
}

// previewID is the id of the preview ref names, for commands that need no
// project otherwise (preview extend, connection-string, psql): an id
// (pvw_...) is used as is, so it works for any project's preview; a name is
// looked up in the command's project (--project, the link, or the only one).
func (a *app) previewID(c *apiclient.Client, ref string) (string, error) {
	if strings.HasPrefix(ref, "pvw_") {
		return ref, nil
	}
	p, err := a.resolveProject(c, a.project, true)
	if err != nil {
		return "", err
	}
	pv, err := a.resolvePreview(c, p.ID, ref)
	if err != nil {
		return "", err
	}
	return pv.ID, nil
}

// resolveAPIKey matches ref against the organization's active keys by id,
// then name (revoked keys keep their names, so they are left out).
func (a *app) resolveAPIKey(c *apiclient.Client, orgID, ref string) (*apiclient.APIKey, error) {
	list, err := c.ListAPIKeys(a.ctx, orgID)
	if mayNotList(err) {
		k := &apiclient.APIKey{}
		k.ID = ref
		return k, nil
	}
	if err != nil {
		return nil, op("list API keys", err)
	}
	if m := matchRef(list, ref, func(k *apiclient.APIKey) string { return k.ID }); len(m) > 0 {
		return &m[0], nil
	}
	var active []apiclient.APIKey
	for _, k := range list {
		if k.IsActive {
			active = append(active, k)
		}
	}
	return one(c, matchRef(active, ref, func(*apiclient.APIKey) string { return "" },
		func(k *apiclient.APIKey) string { return k.Name }), "API key", ref)
}

// resolveRestorePoint matches ref against the project's restore points by
// id, then label.
func (a *app) resolveRestorePoint(c *apiclient.Client, projectID, ref string) (*apiclient.RestorePoint, error) {
	list, _, err := c.ListRestorePoints(a.ctx, projectID)
	if mayNotList(err) {
		rp := &apiclient.RestorePoint{}
		rp.ID = ref
		return rp, nil
	}
	if err != nil {
		return nil, op("list restore points", err)
	}
	return one(c, matchRef(list, ref, func(r *apiclient.RestorePoint) string { return r.ID },
		func(r *apiclient.RestorePoint) string { return r.Label }), "restore point", ref)
}

// resolveBackupKey turns --backup-key into a backup key: the key itself
// (keys are paths: projects/<id>/backups/<id>.dump), or a backup's id or
// label. A reference that matches nothing is passed on as is, so the server
// gives its own answer (an expired key, for example).
func (a *app) resolveBackupKey(c *apiclient.Client, projectID, ref string) (string, error) {
	if strings.Contains(ref, "/") {
		return ref, nil
	}
	list, err := c.ListBackups(a.ctx, projectID)
	if mayNotList(err) {
		return ref, nil
	}
	if err != nil {
		return "", op("list backups", err)
	}
	m := matchRef(list, ref, func(b *apiclient.Backup) string { return b.BackupKey },
		func(b *apiclient.Backup) string { return b.ID }, func(b *apiclient.Backup) string { return strp(b.Label) })
	if len(m) == 0 {
		return ref, nil
	}
	b, err := one(c, m, "backup", ref)
	if err != nil {
		return "", err
	}
	return b.BackupKey, nil
}
