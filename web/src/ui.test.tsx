import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { filterProjects } from './pages/Projects';
import { SecretURL, StateBadge, maskURL } from './ui';
import type { Project } from '@capydb/sdk';

afterEach(cleanup);

const url = 'postgres://u_shop:s3cretPassw0rd@db.example:6432/db_shop?sslmode=require';

describe('maskURL', () => {
  it('hides only the password', () => {
    const m = maskURL(url);
    expect(m).not.toContain('s3cretPassw0rd');
    expect(m).toContain('u_shop:');
    expect(m).toContain('@db.example:6432/db_shop?sslmode=require');
  });
  it('hides everything it cannot parse', () => {
    expect(maskURL('not a url s3cret')).toBe('••••••••');
  });
});

describe('SecretURL', () => {
  it('shows the password only after Reveal, and hides it again', () => {
    render(<SecretURL label="Pooled" url={url} />);
    const code = screen.getByLabelText('Pooled URL');
    expect(code.textContent).not.toContain('s3cretPassw0rd');
    fireEvent.click(screen.getByRole('button', { name: 'Reveal Pooled password' }));
    expect(code.textContent).toBe(url);
    fireEvent.click(screen.getByRole('button', { name: 'Hide Pooled password' }));
    expect(code.textContent).not.toContain('s3cretPassw0rd');
  });
});

describe('rendering is inert', () => {
  it('renders markup in a state as text', () => {
    const { container } = render(<StateBadge state={'<img src=x onerror=alert(1)>'} />);
    expect(container.querySelector('img')).toBeNull();
    expect(container.textContent).toBe('<img src=x onerror=alert(1)>');
  });
});

describe('filterProjects', () => {
  const p = (name: string, extra: Partial<Project> = {}) =>
    ({ id: `prj_${name}`, name, slug: name, region: 'local', state: 'ready', environment: 'non_production', ...extra }) as Project;
  const all = [p('shop'), p('Blog', { region: 'eu-west' }), p('crm', { state: 'failed' })];
  it('matches name, region and state case-insensitively', () => {
    expect(filterProjects(all, 'BLOG').map((x) => x.name)).toEqual(['Blog']);
    expect(filterProjects(all, 'eu-').map((x) => x.name)).toEqual(['Blog']);
    expect(filterProjects(all, 'failed').map((x) => x.name)).toEqual(['crm']);
    expect(filterProjects(all, '  ')).toHaveLength(3);
    expect(filterProjects(all, 'nothing')).toHaveLength(0);
  });
});
