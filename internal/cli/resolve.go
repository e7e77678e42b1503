package cli

import (
	"fmt"
	"strings"

	"github.com/capydb/capydb/internal/apiclient"
)

// resolveProject finds the project a command works on (CLI.md §5): --project
// (id, then slug, then name, case-insensitive) or, without it, the linked
// project (when useLink), or the only visible project.
func (a *app) resolveProject(c *apiclient.Client, ref string, useLink bool) (*apiclient.Project, error) {
	if ref == "" && useLink && a.link != nil {
		p, err := c.GetProject(a.ctx, a.link.ProjectID)
		if apiclient.StatusOf(err) == 404 {
			return nil, withCode(exitNotFound, "the linked project %s (%s) was not found; run capydb link again", a.link.ProjectName, a.link.ProjectID)
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
	match := func(f func(p *apiclient.Project) bool) []apiclient.Project {
		var out []apiclient.Project
		for i := range list {
			if f(&list[i]) {
				out = append(out, list[i])
			}
		}
		return out
	}
	for _, f := range []func(p *apiclient.Project) bool{
		func(p *apiclient.Project) bool { return p.ID == ref },
		func(p *apiclient.Project) bool { return strings.EqualFold(p.Slug, ref) },
		func(p *apiclient.Project) bool { return strings.EqualFold(p.Name, ref) },
	} {
		switch m := match(f); len(m) {
		case 0:
			continue
		case 1:
			return &m[0], nil
		default:
			return a.pickProject(m, fmt.Sprintf("Several projects match %q; pass its id with --project", ref))
		}
	}
	return nil, withCode(exitNotFound, "project %q not found", ref)
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

// resolvePreview matches --preview against the project's previews by id,
// then case-insensitive name.
func (a *app) resolvePreview(c *apiclient.Client, projectID, ref string) (*apiclient.PreviewDatabase, error) {
	if ref == "" {
		return nil, usageError("--preview <id|name> is required")
	}
	list, err := c.ListPreviews(a.ctx, projectID)
	if err != nil {
		return nil, op("list previews", err)
	}
	for i := range list {
		if list[i].ID == ref {
			return &list[i], nil
		}
	}
	var found []int
	for i := range list {
		if strings.EqualFold(list[i].Name, ref) {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 0:
		return nil, withCode(exitNotFound, "preview %q not found", ref)
	case 1:
		return &list[found[0]], nil
	}
	return nil, usageError(fmt.Sprintf("several previews are named %q; pass the id", ref))
}
